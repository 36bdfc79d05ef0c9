"""The bugs side of the hand-over (docs/contracts.md §1, assistance/handover.py): a responder
on `commands.bugs.open`, answering `{"ok": true, "bug_id": …}` only after the commit (R8)."""

from __future__ import annotations

from functools import partial
from typing import Any

import asyncpg

from assistance.bus import Bus
from assistance.handover import HandOverResponder, command_subject
from services.bugs import service
from services.bugs.models import HandOverIn

SUBJECT = command_subject("bugs")


async def open_bug(pool: asyncpg.Pool, order: HandOverIn) -> dict[str, Any]:
    """Record the bug (or link the known one) in one transaction; idempotent per attempt."""
    async with pool.acquire() as conn, conn.transaction():
        return await service.open_from_handover(conn, order)


def responder(pool: asyncpg.Pool, bus: Bus) -> HandOverResponder[HandOverIn]:
    return HandOverResponder(bus, "bugs", HandOverIn, partial(open_bug, pool))
