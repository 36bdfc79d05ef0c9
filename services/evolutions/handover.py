"""The hand-over from the dossier workflow (docs/contracts.md §1): a core-NATS request on
`commands.evolutions.open`, answered `{"ok": true, "request_id", "evolution_id"}` once the
request is committed in the backlog (R9); idempotent on (dossier, attempt)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import asyncpg
from nats.aio.msg import Msg
from opentelemetry import trace
from pydantic import ValidationError

from assistance import telemetry
from assistance.bus import Bus
from services.evolutions import backlog
from services.evolutions.models import HandOverIn

log = logging.getLogger(__name__)

SUBJECT = "commands.evolutions.open"
QUEUE = "evolutions"


class HandOverResponder:
    def __init__(self, pool: asyncpg.Pool, bus: Bus) -> None:
        self.pool = pool
        self.bus = bus
        self.tracer = telemetry.tracer("evolutions.handover")

    async def answer(self, data: bytes) -> dict[str, Any]:
        """The reply to one hand-over; a refusal says why (the workflow retries it)."""
        try:
            order = HandOverIn.model_validate_json(data)
        except ValidationError as invalid:
            return {"ok": False, "error": f"invalid hand-over: {invalid.errors()[:3]}"}
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                ids = await backlog.record_request(conn, order)
        except Exception as exc:  # noqa: BLE001 - refused with a reason; the workflow retries
            log.warning("hand-over of %s not recorded yet: %r", order.dossier_id, exc)
            return {"ok": False, "error": "backlog unavailable, retry"}
        return {"ok": True, **ids}

    async def _on_message(self, msg: Msg) -> None:
        ctx = telemetry.extract(msg.headers)
        with self.tracer.start_as_current_span(
            f"{SUBJECT} process", context=ctx, kind=trace.SpanKind.SERVER
        ):
            reply = await self.answer(msg.data)
        await msg.respond(json.dumps(reply).encode())

    async def run(self) -> None:
        await self.bus.wait_connected()
        assert self.bus.nc is not None
        sub = await self.bus.nc.subscribe(SUBJECT, queue=QUEUE, cb=self._on_message)
        try:
            await asyncio.Event().wait()  # served by the callback until cancelled
        finally:
            await sub.unsubscribe()
