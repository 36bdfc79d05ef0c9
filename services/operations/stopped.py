"""Workflows that stopped (failed, terminated, timed out) and the two actions on one, issue 11
item 6 (docs/decisions/0013):

- **retry**, once the cause is repaired: the workflow's last run is reset to its last completed
  workflow task, so a new run replays the history with the current code and goes on from
  there. Once per run: the run's row is claimed first (a twin waits for the first one's
  transaction, then finds the run retried), and the workflow is described again under the
  claim, so a reset is only ever made while the stopped run is still the workflow's current
  one (a reset of an older run would terminate the run a first reset started). The reset's
  request id is derived from the workflow and run ids, but Temporal (server 1.32) does not
  give the reset run that id, so its own dedup never fires: the claim is the guard.
- **discard**: an administrator acknowledges the stopped run (repaired by hand, or nothing left
  to do); it leaves the list.

Either is one row of `bus.workflow_actions` per run, written in the transaction that records the
action in the dossier's history (an internal timeline entry through the outbox) when the
workflow follows a dossier. After a retry the workflow runs again, so a second retry is refused
(409): nothing is stopped. A second discard answers the run as the first left it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from assistance import outbox
from assistance.events import Event
from assistance.failures import is_outage

log = logging.getLogger(__name__)

SOURCE = "operations"  # the same outbox source as the other operations' history entries
DOSSIER_WORKFLOW = "DossierWorkflow"
RPC_TIMEOUT = timedelta(seconds=5)
RESET_TIMEOUT = timedelta(seconds=10)
# namespace of the reset request ids: uuid5(this, "<workflow id>:<run id>")
RESET_IDS = uuid.UUID("5c1d4b0e-6f4a-4d0b-9a55-0f0b7c3e2a11")

STOPPED = {
    WorkflowExecutionStatus.FAILED: "échoué",
    WorkflowExecutionStatus.TERMINATED: "arrêté",
    WorkflowExecutionStatus.TIMED_OUT: "expiré",
}
WHY = {"échoué": "il avait échoué", "arrêté": "il avait été arrêté", "expiré": "il avait expiré"}


class NotFound(Exception):
    """No such workflow (or its history is gone)."""


class NotStopped(Exception):
    """The workflow's last run is running, or ended normally: nothing to retry or discard."""


class AlreadyHandled(Exception):
    """The run was already acted on the other way (retry after discard, discard after retry)."""


class NeverRan(Exception):
    """The run has no completed workflow task: there is no point to reset it to."""


class Unreachable(Exception):
    """Temporal cannot be reached: try again later."""


def label(workflow_type: str) -> str:
    return (
        "Suivi de dossier arrêté"
        if workflow_type == DOSSIER_WORKFLOW
        else "Traitement planifié arrêté"
    )


def status_word(status: WorkflowExecutionStatus | int | None) -> str:
    return STOPPED.get(WorkflowExecutionStatus(int(status or 0)), "arrêté")


def dossier_of(workflow_id: str, workflow_type: str) -> uuid.UUID | None:
    """A DossierWorkflow's id is its dossier's id."""
    if workflow_type != DOSSIER_WORKFLOW:
        return None
    try:
        return uuid.UUID(workflow_id)
    except ValueError:
        return None


def reset_request_id(workflow_id: str, run_id: str) -> str:
    """The same for every retry of one run (what Temporal's dedup by request id looks at)."""
    return str(uuid.uuid5(RESET_IDS, f"{workflow_id}:{run_id}"))


def action_out(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "workflow_id": r["workflow_id"],
        "run_id": r["run_id"],
        "dossier_id": r["dossier_id"],
        "label": label(r["workflow_type"]),
        "status": r["status"],
        "state": r["state"],
        "new_run_id": r["new_run_id"],
        "acted_by": r["acted_by"],
        "acted_at": r["acted_at"],
    }


async def acted_on(
    conn: asyncpg.Pool | asyncpg.Connection, runs: list[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of these (workflow id, run id) an administrator already retried or discarded."""
    if not runs:
        return set()
    rows = await conn.fetch(
        """SELECT a.workflow_id, a.run_id FROM bus.workflow_actions a
           JOIN unnest($1::text[], $2::text[]) AS r(workflow_id, run_id)
             ON a.workflow_id = r.workflow_id AND a.run_id = r.run_id""",
        [w for w, _ in runs],
        [r for _, r in runs],
    )
    return {(r["workflow_id"], r["run_id"]) for r in rows}


async def latest_runs(temporal: Client, workflow_ids: list[str]) -> dict[str, str]:
    """The current run of each workflow (a reset, even from Temporal's own tools, starts a new
    one: the run that stopped is then no longer the workflow's)."""

    async def one(workflow_id: str) -> tuple[str, str | None]:
        try:
            described = await temporal.get_workflow_handle(workflow_id).describe(
                rpc_timeout=timedelta(seconds=3)
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return workflow_id, None
            raise
        return workflow_id, described.run_id

    found = await asyncio.gather(*(one(w) for w in dict.fromkeys(workflow_ids)))
    return {w: run for w, run in found if run is not None}


# --- actions -------------------------------------------------------------------------------------


async def retry(
    pool: asyncpg.Pool, temporal: Client | None, workflow_id: str, who: str
) -> dict[str, Any]:
    """Reset the stopped last run to its last completed workflow task, once."""
    described = await _stopped_run(temporal, workflow_id)
    assert temporal is not None
    run_id = described.run_id
    async with pool.acquire() as conn, conn.transaction():
        row = await _claim(conn, described, "retried", who)
        if row is None:
            # already acted on: retried (the workflow runs again: a concurrent twin), or discarded
            state = await _state(conn, workflow_id, run_id)
            if state == "retried":
                raise NotStopped
            raise AlreadyHandled(state)
        # under the claim: still the current run, still stopped (a first reset whose commit
        # was lost has started another run, which must not be terminated by a second reset)
        again = await _stopped_run(temporal, workflow_id)
        if again.run_id != run_id:
            raise NotStopped
        point = await _last_completed_task(temporal, workflow_id, run_id)
        if point is None:
            raise NeverRan
        try:
            reset = await temporal.workflow_service.reset_workflow_execution(
                ResetWorkflowExecutionRequest(
                    namespace=temporal.namespace,
                    workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
                    reason=f"travail bloqué : relancé par {who} après réparation",
                    workflow_task_finish_event_id=point,
                    request_id=reset_request_id(workflow_id, run_id),
                ),
                # never retried blindly: a reset whose answer was lost would be made again
                # over the run it started (the next call finds the workflow running: 409)
                retry=False,
                timeout=RESET_TIMEOUT,
            )
        except RPCError as exc:
            raise _refusal(exc) from exc
        except Exception as exc:
            if is_outage(exc):
                raise Unreachable from exc
            raise
        row = await conn.fetchrow(
            """UPDATE bus.workflow_actions SET new_run_id = $3
               WHERE workflow_id = $1 AND run_id = $2 RETURNING *""",
            workflow_id,
            run_id,
            reset.run_id,
        )
        log.info("workflow %s run %s reset by %s: run %s", workflow_id, run_id, who, reset.run_id)
        await _record_on_dossier(conn, row, who)
        return action_out(row)


async def discard(
    pool: asyncpg.Pool, temporal: Client | None, workflow_id: str, who: str
) -> dict[str, Any]:
    """Acknowledge the stopped last run: it leaves the list; the workflow stays stopped."""
    described = await _stopped_run(temporal, workflow_id)
    async with pool.acquire() as conn, conn.transaction():
        row = await _claim(conn, described, "discarded", who)
        if row is None:
            existing = await conn.fetchrow(
                "SELECT * FROM bus.workflow_actions WHERE workflow_id = $1 AND run_id = $2",
                workflow_id,
                described.run_id,
            )
            if existing["state"] == "discarded":
                return action_out(existing)  # already done: the same effect, once
            raise AlreadyHandled(existing["state"])
        await _record_on_dossier(conn, row, who)
        return action_out(row)


async def _stopped_run(temporal: Client | None, workflow_id: str) -> WorkflowExecutionDescription:
    """The workflow's last run, if it stopped badly."""
    if temporal is None:
        raise Unreachable
    try:
        described = await temporal.get_workflow_handle(workflow_id).describe(
            rpc_timeout=RPC_TIMEOUT
        )
    except RPCError as exc:
        raise _refusal(exc) from exc
    except Exception as exc:
        if is_outage(exc):
            raise Unreachable from exc
        raise
    if described.status not in STOPPED:
        raise NotStopped
    return described


async def _claim(
    conn: asyncpg.Connection, described: WorkflowExecutionDescription, state: str, who: str
) -> asyncpg.Record | None:
    """The run's action row, or None if the run was already acted on. A twin acting on the same
    run at the same time waits here for the first one's transaction."""
    return await conn.fetchrow(
        """INSERT INTO bus.workflow_actions (workflow_id, run_id, workflow_type, dossier_id,
               status, state, acted_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (workflow_id, run_id) DO NOTHING RETURNING *""",
        described.id,
        described.run_id,
        described.workflow_type,
        dossier_of(described.id, described.workflow_type),
        status_word(described.status),
        state,
        who,
    )


async def _state(conn: asyncpg.Connection, workflow_id: str, run_id: str) -> str:
    return str(
        await conn.fetchval(
            "SELECT state FROM bus.workflow_actions WHERE workflow_id = $1 AND run_id = $2",
            workflow_id,
            run_id,
        )
    )


async def _last_completed_task(temporal: Client, workflow_id: str, run_id: str) -> int | None:
    """The event id of the run's last WORKFLOW_TASK_COMPLETED: where the reset starts again."""
    last: int | None = None
    try:
        handle = temporal.get_workflow_handle(workflow_id, run_id=run_id)
        async for event in handle.fetch_history_events(rpc_timeout=RPC_TIMEOUT):
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                last = event.event_id
    except RPCError as exc:
        raise _refusal(exc) from exc
    except Exception as exc:
        if is_outage(exc):
            raise Unreachable from exc
        raise
    return last


def _refusal(exc: RPCError) -> Exception:
    """Temporal's refusal as one of ours."""
    if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
        return NotFound()
    if exc.status == RPCStatusCode.FAILED_PRECONDITION:
        return NotStopped()  # e.g. running again by the time the reset arrived
    if is_outage(exc):
        return Unreachable()
    return exc


async def _record_on_dossier(conn: asyncpg.Connection, row: asyncpg.Record, who: str) -> None:
    """The dossier's history says what an administrator did (through the outbox: durable)."""
    if row["dossier_id"] is None:
        return
    retried = row["state"] == "retried"
    why = WHY.get(row["status"], "il s'était arrêté")
    text = (
        f"Suivi du dossier relancé par {who} après réparation ({why})."
        if retried
        else f"Arrêt du suivi du dossier marqué comme traité par {who} ({why}) : "
        "le suivi reste arrêté."
    )
    action = "retry" if retried else "discard"
    event = Event(
        # unique per run and action, across the databases sharing the test NATS (0013)
        id=f"{row['dossier_id']}:workflow:{row['run_id']}:{action}",
        type=f"dossier.operations.{row['state']}",
        data={
            "dossier_id": str(row["dossier_id"]),
            "workflow_id": row["workflow_id"],
            "run_id": row["run_id"],
            "timeline": {
                "kind": "operations",
                "visibility": "internal",
                "author": who,
                "text": text,
                "data": {
                    "workflow_id": row["workflow_id"],
                    "run_id": row["run_id"],
                    "new_run_id": row["new_run_id"],
                },
            },
        },
    )
    await outbox.enqueue_event(conn, SOURCE, event)
