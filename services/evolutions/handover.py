"""The evolutions side of the hand-over (docs/contracts.md §1, assistance/handover.py): a
responder on `commands.evolutions.open`, answering `{"ok": true, "request_id", "evolution_id"}`
once the request is committed in the backlog (R9); idempotent on (dossier, attempt)."""

from __future__ import annotations

from functools import partial
from typing import Any

import asyncpg

from assistance.bus import Bus
from assistance.handover import HandOverResponder, command_subject
from services.evolutions import backlog
from services.evolutions.models import HandOverIn

SUBJECT = command_subject("evolutions")


async def record(pool: asyncpg.Pool, order: HandOverIn) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        ids = await backlog.record_request(conn, order)
    return {"ok": True, **ids}


def responder(pool: asyncpg.Pool, bus: Bus) -> HandOverResponder[HandOverIn]:
    return HandOverResponder(bus, "evolutions", HandOverIn, partial(record, pool))
