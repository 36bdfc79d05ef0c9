"""The dossier read model, projected from events; idempotent and rebuildable (R10).

Each `dossier.dossier.*` event carries `seq` (the workflow's step counter), an optional `set`
of read-model fields, and an optional `timeline` entry. A field update applies only if its
`seq` is newer than what the row already holds, so redelivery or reordering changes nothing.
Timeline entries keep their `seq` and are read in that order (intake's `received` is 0); an
event without `seq` (`dossier.operations.*`, an administrator's action) only adds an entry.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from assistance.events import Event

log = logging.getLogger(__name__)


# the event intake publishes for each accepted deposit (R13): the dossier's first fact
RECEIVED = "intake.request.received"


class NotProjectedYet(Exception):
    """An event of a dossier whose opening is not projected yet: an item failure, retried
    with backoff (the opening is usually a moment behind), parked if it never comes."""


# Read-model columns an event may set, and how to convert them from JSON.
COLUMNS: dict[str, Any] = {
    "reference": str,
    "status": str,
    "kind": str,
    "channel": str,
    "software": str,
    "subject": str,
    "description": str,
    "requester_email": str,
    "requester_name": str,
    "organisation_id": uuid.UUID,
    "received_at": datetime.fromisoformat,
    "first_response_due": datetime.fromisoformat,
    "first_responded_at": datetime.fromisoformat,
    "technician_id": uuid.UUID,
    "technician_name": str,
    "closed_at": datetime.fromisoformat,
    "resolution": str,
    "details": dict,
}
REQUIRED = (
    "reference",
    "status",
    "channel",
    "software",
    "subject",
    "requester_email",
    "requester_name",
    "received_at",
    "first_response_due",
)


def _convert(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in COLUMNS:
            continue
        out[name] = None if value is None else COLUMNS[name](value)
    return out


def received_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The read-model fields of a dossier as intake's `received` event gives them: a new one."""
    return _convert({**data, "status": "new"})


async def apply(conn: asyncpg.Connection, event: Event) -> None:
    """Apply one event inside the caller's transaction."""
    data = event.data
    dossier_id = uuid.UUID(data["dossier_id"])
    seq: int | None
    timeline: dict[str, Any] | None
    if event.type == RECEIVED:
        fields = received_fields(data)
        seq = 0
        timeline = {
            "kind": "received",
            "visibility": "customer",
            "author": data.get("requester_name"),
            "text": data.get("description", ""),
            "data": {
                "channel": data.get("channel"),
                "subject": data.get("subject"),
                # a mail's files, shown with the mail that opened the dossier (issue 14)
                **({"attachments": data["attachments"]} if data.get("attachments") else {}),
            },
        }
    else:
        fields = _convert(data.get("set", {}))
        seq = int(data["seq"]) if data.get("seq") is not None else None
        timeline = data.get("timeline")
    if fields and seq is not None:
        await _upsert(conn, dossier_id, fields, seq)
    if event.type == "dossier.dossier.first_response_breached":
        await _record_breach(conn, dossier_id, event)
    if timeline:
        if seq is None:  # not a workflow step (an administrator's action): after the last one
            seq = await conn.fetchval(
                "SELECT last_seq FROM dossier.dossiers WHERE id = $1", dossier_id
            )
        await conn.execute(
            """INSERT INTO dossier.timeline (event_id, dossier_id, at, kind, visibility, author,
                   text, data, seq)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO NOTHING""",
            event.id,
            dossier_id,
            event.occurred_at,
            timeline["kind"],
            timeline.get("visibility", "internal"),
            timeline.get("author"),
            timeline.get("text", ""),
            timeline.get("data", {}),
            seq or 0,
        )


async def _upsert(
    conn: asyncpg.Connection, dossier_id: uuid.UUID, fields: dict[str, Any], seq: int
) -> None:
    if all(name in fields for name in REQUIRED):
        names = list(fields)
        placeholders = ", ".join(f"${i + 3}" for i in range(len(names)))
        await conn.execute(
            f"""INSERT INTO dossier.dossiers (id, last_seq, {", ".join(names)})
                VALUES ($1, $2, {placeholders})
                ON CONFLICT (id) DO NOTHING""",
            dossier_id,
            seq,
            *fields.values(),
        )
    if seq == 0:
        return  # intake's copy never overrides what the workflow said
    names = list(fields)
    assignments = ", ".join(f"{name} = ${i + 3}" for i, name in enumerate(names))
    result = await conn.execute(
        f"""UPDATE dossier.dossiers SET {assignments}, last_seq = $2, updated_at = now()
            WHERE id = $1 AND last_seq < $2""",
        dossier_id,
        seq,
        *fields.values(),
    )
    if result == "UPDATE 0" and not await conn.fetchval(
        "SELECT 1 FROM dossier.dossiers WHERE id = $1", dossier_id
    ):
        raise NotProjectedYet(f"dossier {dossier_id} not projected yet")


async def _record_breach(conn: asyncpg.Connection, dossier_id: uuid.UUID, event: Event) -> None:
    """R3: breaches are recorded and reported."""
    breach = event.data.get("breach", {})
    await conn.execute(
        """INSERT INTO dossier.breaches (dossier_id, reference, software, due, breached_at,
               technician_id)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dossier_id) DO NOTHING""",
        dossier_id,
        event.data.get("reference", ""),
        breach.get("software", ""),
        datetime.fromisoformat(breach["due"]),
        event.occurred_at,
        uuid.UUID(breach["technician_id"]) if breach.get("technician_id") else None,
    )


class Projector:
    """The NATS handler: one transaction per event."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def __call__(self, event: Event) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await apply(conn, event)
