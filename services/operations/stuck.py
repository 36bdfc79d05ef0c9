"""Stuck work, read cheaply from where it is recorded, and the two actions on a parked item:
retry (after repair) and discard. Both are idempotent in effect and recorded in the
dossier's history when the item concerns a dossier (docs/decisions/0013). The same two actions
on a stopped workflow are in `stopped.py`."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.client import Client

from assistance import outbox
from assistance.bus import STREAMS, Bus
from assistance.events import Event
from services.operations import retention, stopped
from services.operations.labels import consumer_label, label

log = logging.getLogger(__name__)

SOURCE = "operations"  # its outbox rows: admin mails, dossier history entries
LIMIT = 200
SCANNED_WORKFLOWS = 200  # stopped runs read from Temporal's visibility, at most
SHOWN_WORKFLOWS = 50  # of which, not acted on yet, shown
FAILED_WORKFLOWS = (
    'ExecutionStatus="Failed" OR ExecutionStatus="TimedOut" OR ExecutionStatus="Terminated"'
)


class NotFound(Exception):
    pass


class NotPossible(Exception):
    """The item is in a state where this action makes no sense (e.g. retry a discarded one)."""


def reference_of(data: str) -> str | None:
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    inner = parsed["data"] if isinstance(parsed.get("data"), dict) else {}
    ref = parsed.get("reference") or inner.get("reference")
    return str(ref) if ref else None


def parked_out(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": r["id"],
        "source": r["source"],
        "label": label(r["source"], r["name"], r["kind"]),
        "subject": r["subject"],
        "dossier_id": r["dossier_id"],
        "reference": reference_of(r["data"]),
        "error": r["error"],
        "attempts": r["attempts"],
        "first_failed_at": r["first_failed_at"],
        "last_failed_at": r["last_failed_at"],
        "state": r["state"],
        "acted_by": r["acted_by"],
        "acted_at": r["acted_at"],
    }


async def parked(conn: asyncpg.Pool | asyncpg.Connection, state: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT * FROM bus.parked WHERE ($1 = 'all' OR state = $1)
           ORDER BY first_failed_at DESC, id DESC LIMIT $2""",
        state,
        LIMIT,
    )
    return [parked_out(r) for r in rows]


async def counts(conn: asyncpg.Pool | asyncpg.Connection, stuck_after: int) -> dict[str, int]:
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM bus.parked WHERE state = 'open') AS parked,
                  (SELECT count(*) FROM bus.outbox WHERE status = 'pending' AND attempts > 0)
                      AS outbox_failing,
                  (SELECT count(*) FROM bus.activity_failures WHERE attempt > $1)
                      AS activities_retrying""",
        stuck_after,
    )
    return dict(row)


async def outbox_failing(conn: asyncpg.Pool | asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT id, source, kind, ordering_key, payload, attempts, last_error, created_at,
                  next_attempt_at
           FROM bus.outbox WHERE status = 'pending' AND attempts > 0
           ORDER BY id LIMIT $1""",
        LIMIT,
    )
    return [
        {
            "id": r["id"],
            "label": label("outbox", r["source"], r["kind"]),
            "dossier_id": _uuid((r["ordering_key"] or "").split(":", 1)[0]),
            "reference": reference_of(json.dumps(r["payload"])),
            "attempts": r["attempts"],
            "error": r["last_error"],
            "created_at": r["created_at"],
            "next_attempt_at": r["next_attempt_at"],
        }
        for r in rows
    ]


async def activities_retrying(
    conn: asyncpg.Pool | asyncpg.Connection, stuck_after: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT * FROM bus.activity_failures WHERE attempt > $1
           ORDER BY first_failed_at LIMIT $2""",
        stuck_after,
        LIMIT,
    )
    return [
        {
            "workflow_id": r["workflow_id"],
            "label": label("activity", r["activity_type"], r["activity_type"]),
            "dossier_id": r["dossier_id"],
            "attempt": r["attempt"],
            "error": r["error"],
            "first_failed_at": r["first_failed_at"],
            "last_failed_at": r["last_failed_at"],
        }
        for r in rows
    ]


async def failed_workflows(
    temporal: Client | None, conn: asyncpg.Pool | asyncpg.Connection
) -> list[dict[str, Any]] | None:
    """Workflows whose last run ended badly and that nobody retried or discarded yet (one
    visibility query, then the current run of each: a run a reset replaced is not listed);
    None if Temporal is away."""
    if temporal is None:
        return None
    runs: list[Any] = []
    try:
        async with asyncio.timeout(5):
            async for wf in temporal.list_workflows(
                FAILED_WORKFLOWS, limit=SCANNED_WORKFLOWS, rpc_timeout=timedelta(seconds=3)
            ):
                runs.append(wf)
            handled = await stopped.acted_on(conn, [(wf.id, wf.run_id) for wf in runs])
            runs = [wf for wf in runs if (wf.id, wf.run_id) not in handled][:SHOWN_WORKFLOWS]
            current = await stopped.latest_runs(temporal, [wf.id for wf in runs])
    except Exception as exc:  # noqa: BLE001 - the view shows what it could read
        log.info("failed workflows not listed: %r", exc)
        return None
    return [
        {
            "workflow_id": wf.id,
            "run_id": wf.run_id,
            "dossier_id": _uuid(wf.id),
            "label": stopped.label(wf.workflow_type),
            "status": stopped.status_word(wf.status),
            "closed_at": wf.close_time,
        }
        for wf in runs
        if current.get(wf.id) == wf.run_id
    ]


async def consumer_lag(bus: Bus) -> list[dict[str, Any]] | None:
    """What each durable consumer still has to read (JetStream's own counters)."""
    if not bus.connected:
        return None
    out: list[dict[str, Any]] = []
    try:
        for stream in STREAMS:
            for info in await bus.js.consumers_info(stream):
                if not info.config.durable_name:
                    continue
                out.append(
                    {
                        "stream": stream,
                        "name": info.name,
                        "label": consumer_label(info.name),
                        "pending": info.num_pending or 0,
                        "unacknowledged": info.num_ack_pending or 0,
                        "redelivered": info.num_redelivered or 0,
                    }
                )
    except Exception as exc:  # noqa: BLE001 - shown as unavailable
        log.info("consumer lag not read: %r", exc)
        return None
    return sorted(out, key=lambda c: (-c["pending"], c["name"]))


# --- actions -----------------------------------------------------------------------------


async def act(
    pool: asyncpg.Pool,
    bus: Bus,
    temporal: Client | None,
    parked_id: int,
    action: str,
    who: str,
) -> dict[str, Any]:
    """Retry or discard a parked item, once: a second call answers the item as it is."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT * FROM bus.parked WHERE id = $1 FOR UPDATE", parked_id)
        if row is None:
            raise NotFound
        done_state = "retried" if action == "retry" else "discarded"
        if row["state"] == done_state:
            return parked_out(row)  # already done: the same effect, once
        if row["state"] != "open":
            raise NotPossible(row["state"])
        if action == "retry":
            await _retry(conn, bus, temporal, row)
        updated = await conn.fetchrow(
            """UPDATE bus.parked SET state = $2, acted_by = $3, acted_at = now()
               WHERE id = $1 RETURNING *""",
            parked_id,
            done_state,
            who,
        )
        if row["dossier_id"] is not None:
            await _record_on_dossier(conn, updated, action, who)
        return parked_out(updated)


async def _retry(
    conn: asyncpg.Connection, bus: Bus, temporal: Client | None, row: asyncpg.Record
) -> None:
    if row["source"] == "consumer":
        # to the one consumer that parked it; the id (its place in the stream) makes a
        # second retry a no-op in NATS
        await bus.republish(
            row["subject"], row["data"].encode(), f"retry:{row['ref']}:{row['id']}", row["name"]
        )
    elif row["source"] == "outbox":
        await conn.execute(
            """UPDATE bus.outbox SET status = 'pending', attempts = 0, last_error = NULL,
                   next_attempt_at = now() WHERE id = $1 AND status = 'parked'""",
            int(row["ref"]),
        )
    elif row["source"] == "activity":
        if temporal is None:
            raise NotPossible("temporal")
        if row["kind"] == retention.RETENTION_BATCH:  # its run has ended: run the day's again
            await retention.trigger(temporal)
            return
        workflow_id, _, _ = row["ref"].partition(":")
        await temporal.get_workflow_handle(workflow_id).signal(
            "retry_effect",
            {"parked_id": row["id"], "activity": row["kind"], "args": json.loads(row["data"])},
        )
    else:
        raise NotPossible(row["source"])


async def _record_on_dossier(
    conn: asyncpg.Connection, row: asyncpg.Record, action: str, who: str
) -> None:
    """The dossier's history says what an administrator did (through the outbox: durable)."""
    what = label(row["source"], row["name"], row["kind"])
    text = (
        f"Travail bloqué relancé par {who} après réparation : {what}."
        if action == "retry"
        else f"Travail bloqué abandonné par {who} : {what}."
    )
    event = Event(
        id=f"{row['dossier_id']}:parked:{row['id']}:{action}",
        type=f"dossier.operations.{'retried' if action == 'retry' else 'discarded'}",
        data={
            "dossier_id": str(row["dossier_id"]),
            "parked_id": row["id"],
            "timeline": {
                "kind": "operations",
                "visibility": "internal",
                "author": who,
                "text": text,
                "data": {"parked_id": row["id"], "error": row["error"][:500]},
            },
        },
    )
    await outbox.enqueue_event(conn, SOURCE, event)


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
