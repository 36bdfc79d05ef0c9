"""Intake's outbox senders: a committed request reaches NATS and starts its dossier (R13)."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

START_DOSSIER = "start_dossier"


def dossier_starter(temporal: Client, task_queue: str) -> Any:
    """Start the DossierWorkflow, idempotently: workflow id = dossier id."""

    async def start(opening: dict[str, Any]) -> None:
        # Already started and since finished: nothing to do.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await temporal.start_workflow(
                "DossierWorkflow",
                opening,
                id=opening["dossier_id"],
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                rpc_timeout=timedelta(seconds=5),
            )

    return start
