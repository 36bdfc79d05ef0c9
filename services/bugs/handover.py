"""The bugs side of the hand-over (docs/contracts.md §1): a core-NATS responder on
`commands.bugs.open`, answering `{"ok": true, "bug_id": …}` only after the commit (R8)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import asyncpg
from nats.aio.msg import Msg
from pydantic import ValidationError

from assistance.bus import Bus
from services.bugs import service
from services.bugs.models import HandOverIn

log = logging.getLogger(__name__)

SUBJECT = "commands.bugs.open"
QUEUE = "bugs"  # one responder per request however many processes run the service


async def answer(pool: asyncpg.Pool, data: bytes) -> dict[str, Any]:
    """The answer to one hand-over; a refusal never raises (the workflow retries those)."""
    try:
        order = HandOverIn.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return {"ok": False, "error": f"invalid hand-over: {where}: {first['msg']}"}
    try:
        async with pool.acquire() as conn, conn.transaction():
            return await service.open_from_handover(conn, order)
    except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
        log.warning("hand-over of dossier %s not recorded yet: %r", order.dossier_id, exc)
        return {"ok": False, "error": "bugs service unavailable, retry"}


class HandOverResponder:
    def __init__(self, pool: asyncpg.Pool, bus: Bus) -> None:
        self.pool = pool
        self.bus = bus

    async def run(self) -> None:
        await self.bus.wait_connected()
        assert self.bus.nc is not None
        sub = await self.bus.nc.subscribe(SUBJECT, queue=QUEUE, cb=self._on_request)
        try:
            await asyncio.Event().wait()  # served by the callback until cancelled
        finally:
            await sub.unsubscribe()

    async def _on_request(self, msg: Msg) -> None:
        reply = await answer(self.pool, msg.data)
        if msg.reply:
            await msg.respond(json.dumps(reply).encode())
