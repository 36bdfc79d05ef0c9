"""The hand-over contract and its NATS responder, once for every service (R7–R9).

The dossier workflow hands a dossier to the service that owns its next step with a core-NATS
request on `commands.<service>.open` (docs/contracts.md §1): the JSON of
`workflows.types.HandOver`, validated here as `HandOver` — one set of limits, wide enough for
everything intake and the diagnosis accept. The service answers `{"ok": true, …}` once it has
committed what it recorded, idempotent on (`dossier_id`, `attempt`); a refusal is
`{"ok": false, "error": "…"}`, and the workflow's activity retries until it gets an answer.

Each service narrows `service` to its own name (and may add a field), and gives
`HandOverResponder` its handler; the responder does the rest the same way everywhere: the queue
group named after the service, the trace context taken from the NATS headers
(assistance/telemetry.py), the refusal of a malformed order with the first invalid field, a
failure answered as "unavailable, retry".
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from nats.aio.msg import Msg
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assistance import telemetry
from assistance.bus import Bus
from assistance.text import cleaned

log = logging.getLogger(__name__)


def command_subject(service: str, verb: str = "open") -> str:
    """`commands.<service>.<verb>`: core request/reply, captured by no stream."""
    return f"commands.{service}.{verb}"


class HandOver(BaseModel):
    """`services.dossier.state.HandOver` as JSON (docs/contracts.md §1). `dossier_id` comes
    first, so an order missing it or with a bad one is refused naming it."""

    model_config = ConfigDict(extra="ignore")

    dossier_id: uuid.UUID
    service: str = Field(min_length=1, max_length=40)
    reference: str = Field(min_length=1, max_length=64)
    software: str = Field(min_length=1, max_length=100)
    organisation_id: uuid.UUID | None = None
    requester_email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    requester_name: str = Field(default="", max_length=200)
    subject: str = Field(min_length=1, max_length=1000)
    description: str = Field(default="", max_length=50_000)
    context: str = Field(default="", max_length=20_000)
    need: str = Field(default="", max_length=20_000)
    version: str | None = Field(default=None, max_length=64)
    workaround: str | None = Field(default=None, max_length=20_000)
    attempt: int = Field(default=1, ge=1)

    @field_validator(
        "service", "reference", "software", "requester_name", "subject", "version", mode="before"
    )
    @classmethod
    def _one_line(cls, value: Any) -> Any:
        """A hand-over is never refused for its text: the text policy (assistance/text.py)
        cleans it; names and subjects go into mail headers, so they hold no CR/LF."""
        return cleaned(value, single_line=True)[0]

    @field_validator("description", "context", "need", "workaround", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return cleaned(value, single_line=False)[0]


Order = TypeVar("Order", bound=HandOver)
Handler = Callable[[Order], Awaitable[dict[str, Any]]]


def refusal(exc: ValidationError) -> dict[str, Any]:
    """`{"ok": false, "error": "invalid hand-over: <field>: <why>"}`, the first invalid field."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return {"ok": False, "error": f"invalid hand-over: {where}: {first['msg']}"}


class HandOverResponder(Generic[Order]):
    """Answers `commands.<service>.open` in the queue group `<service>` (one answer per request
    however many processes run the service).

    With `concurrency` above 1, requests are handled concurrently, that many at a time, so one
    slow hand-over never holds up the others; with 1, one after the other, in arrival order.
    """

    def __init__(
        self,
        bus: Bus,
        service: str,
        order_type: type[Order],
        handle: Handler[Order],
        *,
        concurrency: int = 1,
    ) -> None:
        self.bus = bus
        self.service = service
        self.subject = command_subject(service)
        self.order_type = order_type
        self.handle = handle
        self.concurrency = concurrency
        self._limit = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._tracer = telemetry.tracer(f"{service}.handover")

    async def run(self) -> None:
        await self.bus.wait_connected()
        assert self.bus.nc is not None
        sub = await self.bus.nc.subscribe(self.subject, queue=self.service, cb=self._on_message)
        try:
            await asyncio.Event().wait()  # served by the callback until cancelled
        finally:
            await sub.unsubscribe()
            for task in list(self._tasks):
                task.cancel()

    async def answer(self, data: bytes) -> dict[str, Any]:
        """The answer to one hand-over; never raises (a refusal says why, the workflow
        retries)."""
        try:
            order = self.order_type.model_validate_json(data)
        except ValidationError as exc:
            return refusal(exc)
        try:
            async with self._limit:
                return await self.handle(order)
        except Exception as exc:  # noqa: BLE001 - answered; the workflow's activity retries
            log.warning(
                "%s hand-over of dossier %s not recorded yet: %r",
                self.service,
                order.dossier_id,
                exc,
            )
            return {
                "ok": False,
                "error": f"{self.service} service unavailable, retry: {type(exc).__name__}",
            }

    async def _on_message(self, msg: Msg) -> None:
        if self.concurrency <= 1:
            await self._serve(msg)
            return
        task = asyncio.create_task(self._serve(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, msg: Msg) -> None:
        with self._tracer.start_as_current_span(
            f"{self.subject} process",
            context=telemetry.extract(msg.headers),
            kind=trace.SpanKind.SERVER,
        ):
            reply = await self.answer(msg.data)
        if not msg.reply:
            return
        try:
            await msg.respond(json.dumps(reply).encode())
        except Exception as exc:  # noqa: BLE001 - the requester retries and gets a replay
            log.warning("could not answer a %s hand-over: %r", self.service, exc)
