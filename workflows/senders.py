"""The dossiers' workflows started and signalled from the outbox (R13): the senders that the
composition (composition/parts.py) gives intake's relay for its `start_dossier` and
`signal_dossier` rows; intake does not import the workflows.

Every send is idempotent: workflow id = dossier id, and a start of a workflow already started
(running, or since finished) does nothing. A failure is raised to the relay, which retries
with backoff, waits through an outage of Temporal, or parks the row (assistance/outbox.py).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from assistance.temporal import WorkflowFinished, type_adapter
from services.dossier.state import DossierOpening
from workflows.dossier import DossierWorkflow

if TYPE_CHECKING:
    from assistance.outbox import Sender
    from assistance.runtime import Runtime

RPC_TIMEOUT = timedelta(seconds=5)


def dossier_starter(rt: Runtime) -> Sender:
    """Start the DossierWorkflow, idempotently: workflow id = dossier id.

    The outbox row holds the opening as JSON; it is read back as the workflow's typed input
    (the same conversion the workflow's data converter makes), so a row that does not fit
    fails here, in the relay, not in the workflow."""
    temporal, task_queue = rt.temporal, rt.settings.temporal_task_queue
    assert temporal is not None

    async def start(payload: dict[str, Any]) -> None:
        opening = type_adapter(DossierOpening).validate_python(payload)
        # Already started and since finished: nothing to do.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await temporal.start_workflow(
                DossierWorkflow.run,
                opening,
                id=opening.dossier_id,
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                rpc_timeout=RPC_TIMEOUT,
            )

    return start


def dossier_signaller(rt: Runtime) -> Sender:
    """Deliver a signal (`{"dossier_id", "signal", "arg"}`, e.g. a mail reply:
    `customer_message`) to its dossier's workflow.

    Not started yet (its start row is still queued): raise, the outbox retries. Finished
    (closed past the reopen window): `WorkflowFinished`, for the relay's part to decide.
    """
    temporal = rt.temporal
    assert temporal is not None

    async def signal(payload: dict[str, Any]) -> None:
        handle = temporal.get_workflow_handle(payload["dossier_id"])
        try:
            await handle.signal(payload["signal"], payload["arg"], rpc_timeout=RPC_TIMEOUT)
            return
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        description = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        if description.status == WorkflowExecutionStatus.RUNNING:
            raise RuntimeError("workflow running again; signal on the next attempt")
        raise WorkflowFinished(payload["dossier_id"])

    return signal
