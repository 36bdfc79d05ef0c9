"""The NATS responder for `commands.training.open` (docs/contracts.md, section 1).

Core request/reply in the queue group `training`, so several instances share the load. The
answer goes out only after the booking is committed; a malformed hand-over is refused with
`{"ok": false}`; a failure answers `{"ok": false}` too, and the workflow's activity retries.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from nats.aio.msg import Msg
from opentelemetry import trace
from pydantic import ValidationError

from assistance import telemetry
from assistance.bus import Bus
from services.training import booking
from services.training.context import Context
from services.training.models import HandOverIn

log = logging.getLogger(__name__)

SUBJECT = "commands.training.open"
QUEUE = "training"


class Responder:
    def __init__(self, ctx: Context, bus: Bus, concurrency: int = 8) -> None:
        self.ctx = ctx
        self.bus = bus
        self._limit = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._tracer = telemetry.tracer("training.responder")

    async def run(self) -> None:
        await self.bus.wait_connected()
        assert self.bus.nc is not None
        sub = await self.bus.nc.subscribe(SUBJECT, queue=QUEUE, cb=self._on_message)
        try:
            await asyncio.Event().wait()
        finally:
            await sub.unsubscribe()
            for task in list(self._tasks):
                task.cancel()

    async def _on_message(self, msg: Msg) -> None:
        # Handled concurrently: one slow booking never holds up the others.
        task = asyncio.create_task(self._handle(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, msg: Msg) -> None:
        with self._tracer.start_as_current_span(
            f"{SUBJECT} process",
            context=telemetry.extract(msg.headers),
            kind=trace.SpanKind.SERVER,
        ):
            answer = await self.answer(msg.data)
        if msg.reply:
            try:
                await msg.respond(json.dumps(answer).encode())
            except Exception as exc:  # noqa: BLE001 - the requester retries and gets a replay
                log.warning("could not answer a training hand-over: %r", exc)

    async def answer(self, data: bytes) -> dict[str, Any]:
        try:
            order = HandOverIn.model_validate_json(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return {"ok": False, "error": f"invalid hand-over: {where}: {first['msg']}"}
        try:
            async with self._limit:
                return await booking.open_request(self.ctx, order)
        except Exception as exc:  # noqa: BLE001 - answered; the activity retries
            log.exception("training hand-over for dossier %s failed", order.dossier_id)
            return {"ok": False, "error": f"training service unavailable: {type(exc).__name__}"}
