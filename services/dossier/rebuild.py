"""Rebuild the dossier read model from the event streams (R10; issue 11 item 5).

The INTAKE stream (`intake.request.received`) then the DOSSIER stream (`dossier.>`) are
replayed with an ephemeral consumer, in stream order, into the same `apply` the live
projection uses, inside one transaction: all of it (truncate and replay) or one dossier
(delete and replay). The live projection waits on the transaction's locks meanwhile, then
goes on idempotently. `assistance rebuild [--dossier ID]`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import asyncpg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from assistance.bus import Bus
from assistance.events import Event
from services.dossier.projection import NotProjectedYet, apply

log = logging.getLogger(__name__)

REPLAYED = (("INTAKE", "intake.request.received"), ("DOSSIER", "dossier.>"))
PROJECTED = (
    "dossier.timeline",
    "dossier.breaches",
    "dossier.search_documents",
    "dossier.dossiers",
)
BATCH = 500


@dataclass
class Rebuilt:
    events: int = 0  # applied
    skipped: int = 0  # not about a projected dossier, or unreadable
    dossiers: int = 0


async def rebuild(pool: asyncpg.Pool, bus: Bus, dossier_id: uuid.UUID | None = None) -> Rebuilt:
    done = Rebuilt()
    async with pool.acquire() as conn, conn.transaction():
        if dossier_id is None:
            await conn.execute(f"TRUNCATE {', '.join(PROJECTED)}")
        else:
            await conn.execute("DELETE FROM dossier.timeline WHERE dossier_id = $1", dossier_id)
            await conn.execute("DELETE FROM dossier.breaches WHERE dossier_id = $1", dossier_id)
            await conn.execute("DELETE FROM dossier.dossiers WHERE id = $1", dossier_id)
        for stream, subject in REPLAYED:
            async for event in _replay(bus, stream, subject):
                if dossier_id is not None and event.data.get("dossier_id") != str(dossier_id):
                    continue
                try:
                    async with conn.transaction():  # a savepoint: one bad event skips alone
                        await apply(conn, event)
                    done.events += 1
                except (NotProjectedYet, KeyError, ValueError, asyncpg.DataError) as exc:
                    log.warning("rebuild skips %s %s: %r", event.type, event.id, exc)
                    done.skipped += 1
        done.dossiers = await conn.fetchval(
            "SELECT count(*) FROM dossier.dossiers WHERE ($1::uuid IS NULL OR id = $1)",
            dossier_id,
        )
    return done


async def _replay(bus: Bus, stream: str, subject: str):  # type: ignore[no-untyped-def]
    """Every message of `subject` in `stream`, in order, through an ephemeral consumer."""
    info = await bus.js.stream_info(stream)
    if not info.state.messages:
        return
    sub = await bus.js.pull_subscribe(
        subject,
        durable=None,
        stream=stream,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0,
        ),
    )
    try:
        while True:
            try:
                msgs = await sub.fetch(BATCH, timeout=2)
            except NatsTimeout:
                return  # nothing (more) to read
            for msg in msgs:
                try:
                    yield Event.model_validate_json(msg.data)
                except ValidationError:
                    continue
            if msgs and msgs[-1].metadata.num_pending == 0:
                return
    finally:
        await sub.unsubscribe()
