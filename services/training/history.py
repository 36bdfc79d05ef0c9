"""The client's dossiers, read from the DOSSIER stream into this service's own table, for the
brief (engagement 4). The dossier read model stays the dossier service's: no cross-schema read.

Each `dossier.dossier.*` event carries `seq` (the workflow's step) and `set` (read-model
fields); a field applies only if its `seq` is newer than the row's, so redelivery or
reordering changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg

from assistance.bus import PoisonMessage
from assistance.events import Event

SUBJECTS = ["dossier.dossier.opened", "dossier.dossier.closed", "dossier.dossier.reopened"]
DURABLE = "training-dossiers"

COLUMNS: dict[str, Callable[[Any], Any]] = {
    "organisation_id": uuid.UUID,
    "requester_email": str,
    "software": str,
    "subject": str,
    "kind": str,
    "status": str,
    "resolution": str,
    "received_at": datetime.fromisoformat,
    "closed_at": datetime.fromisoformat,
}


def fields_of(event: Event) -> tuple[uuid.UUID, str, int, dict[str, Any]]:
    """(dossier id, reference, seq, columns to set); PoisonMessage if malformed."""
    data = event.data
    try:
        dossier_id = uuid.UUID(str(data["dossier_id"]))
        shown = data.get("set") or {}
        reference = str(data.get("reference") or shown["reference"])
        seq = int(data["seq"])
        fields = {
            name: None if shown[name] is None else convert(shown[name])
            for name, convert in COLUMNS.items()
            if name in shown
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise PoisonMessage(f"malformed dossier event {event.id}: {exc!r}") from exc
    return dossier_id, reference, seq, fields


async def apply(conn: asyncpg.Connection, event: Event) -> None:
    dossier_id, reference, seq, fields = fields_of(event)
    await conn.execute(
        """INSERT INTO training.client_dossiers (dossier_id, reference) VALUES ($1, $2)
           ON CONFLICT (dossier_id) DO NOTHING""",
        dossier_id,
        reference,
    )
    names = list(fields)
    assignments = "".join(f", {name} = ${i + 4}" for i, name in enumerate(names))
    await conn.execute(
        f"""UPDATE training.client_dossiers SET reference = $3, last_seq = $2{assignments}
            WHERE dossier_id = $1 AND last_seq < $2""",
        dossier_id,
        seq,
        reference,
        *fields.values(),
    )


class Recorder:
    """The NATS handler: one transaction per event."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def __call__(self, event: Event) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await apply(conn, event)
