"""NATS JetStream: streams per bounded context, idempotent publish, durable pull consumers.

NATS is a transport, not the system of record: a message that cannot be handled after
`max_deliver` attempts is written to `bus.dead_letters` in PostgreSQL, then terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg
import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from opentelemetry import trace
from pydantic import ValidationError

from assistance import telemetry
from assistance.events import Event

log = logging.getLogger(__name__)

# One stream per bounded context.
STREAMS: dict[str, list[str]] = {
    "INTAKE": ["intake.>"],
    "DOSSIER": ["dossier.>"],
    "TRAINING": ["training.>"],
    "BUGS": ["bugs.>"],
    "EVOLUTIONS": ["evolutions.>"],
}
DUPLICATE_WINDOW_S = 24 * 3600
MAX_DELIVER = 8
BACKOFF_S = [1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]

Handler = Callable[[Event], Awaitable[None]]


class TransientError(Exception):
    """Raise from a handler to have the message redelivered later."""


class PoisonMessage(Exception):
    """Raise from a handler for a message that can never be handled."""


def stream_for(subject: str) -> str:
    prefix = subject.split(".", 1)[0].upper()
    if prefix not in STREAMS:
        raise ValueError(f"no stream carries subject {subject!r}")
    return prefix


class Bus:
    def __init__(self, url: str, name: str = "assistance", replicas: int = 1) -> None:
        self.url = url
        self.name = name
        self.replicas = replicas
        self.nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise ConnectionError("NATS is not connected yet")
        return self._js

    async def connect(self, *, wait: bool = True, timeout: float | None = None) -> None:
        """Connect, retrying until NATS answers (R13: the rest keeps working meanwhile)."""

        async def attempt() -> None:
            delay = 0.2
            while True:
                try:
                    self.nc = await nats.connect(
                        self.url,
                        name=self.name,
                        max_reconnect_attempts=-1,
                        reconnect_time_wait=0.5,
                        connect_timeout=2,
                    )
                    self._js = self.nc.jetstream(timeout=5)
                    self._connected.set()
                    return
                except Exception as exc:  # noqa: BLE001 - retried, never fatal
                    log.warning("NATS not reachable at %s (%s); retrying", self.url, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)

        if wait:
            await asyncio.wait_for(attempt(), timeout)
        else:
            self._tasks.append(asyncio.create_task(attempt()))

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def ensure_streams(self) -> None:
        for name, subjects in STREAMS.items():
            config = StreamConfig(
                name=name,
                subjects=subjects,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
                duplicate_window=DUPLICATE_WINDOW_S,
            )
            try:
                await self.js.stream_info(name)
                await self.js.update_stream(config)
            except NotFoundError:
                await self.js.add_stream(config)

    async def publish(self, event: Event) -> None:
        """Publish once: JetStream drops a second message with the same `Nats-Msg-Id`."""
        headers = telemetry.inject({"Nats-Msg-Id": event.id})
        await self.js.publish(
            event.type,
            event.model_dump_json().encode(),
            stream=stream_for(event.type),
            headers=headers,
        )

    async def consume(
        self,
        durable: str,
        subjects: list[str],
        handler: Handler,
        *,
        pool: asyncpg.Pool | None = None,
        batch: int = 50,
    ) -> None:
        """Run a durable pull consumer until cancelled."""
        await self._consume(durable, subjects, handler, pool, batch)

    async def _consume(
        self,
        durable: str,
        subjects: list[str],
        handler: Handler,
        pool: asyncpg.Pool | None,
        batch: int,
    ) -> None:
        await self.wait_connected()
        stream = stream_for(subjects[0])
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=MAX_DELIVER,
            backoff=BACKOFF_S,
            ack_wait=BACKOFF_S[0] * 30,
            filter_subjects=subjects if len(subjects) > 1 else None,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
        )
        while True:
            try:
                await self.js.add_consumer(stream, config)  # create or update, idempotent
                sub = await self.js.pull_subscribe_bind(durable, stream=stream)
                break
            except Exception as exc:  # noqa: BLE001 - NATS away or stream not created yet
                log.info("consumer %s waiting: %s", durable, exc)
                await asyncio.sleep(1)
        tracer = telemetry.tracer(f"consumer.{durable}")
        while True:
            try:
                msgs = await sub.fetch(batch, timeout=1)
            except NatsTimeout:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS away: wait and fetch again
                log.debug("fetch failed for %s: %s", durable, exc)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                await self._handle(msg, handler, tracer, durable, pool)

    async def _handle(
        self,
        msg: Msg,
        handler: Handler,
        tracer: trace.Tracer,
        durable: str,
        pool: asyncpg.Pool | None,
    ) -> None:
        ctx = telemetry.extract(msg.headers)
        with tracer.start_as_current_span(
            f"{msg.subject} process", context=ctx, kind=trace.SpanKind.CONSUMER
        ) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", msg.subject)
            span.set_attribute("messaging.consumer.group.name", durable)
            delivered = msg.metadata.num_delivered if msg.metadata else 1
            try:
                event = Event.model_validate_json(msg.data)
                await handler(event)
            except (ValidationError, PoisonMessage) as exc:
                await self._dead_letter(msg, durable, pool, f"poison: {exc}")
                await msg.term()
                return
            except Exception as exc:  # noqa: BLE001 - redelivered with backoff, then dead-lettered
                if delivered >= MAX_DELIVER:
                    await self._dead_letter(msg, durable, pool, f"gave up: {exc!r}")
                    await msg.term()
                else:
                    log.warning("handler %s failed (%s), redelivery %d", durable, exc, delivered)
                    await msg.nak(delay=BACKOFF_S[min(delivered, len(BACKOFF_S)) - 1])
                return
            await msg.ack()

    async def _dead_letter(
        self, msg: Msg, durable: str, pool: asyncpg.Pool | None, reason: str
    ) -> None:
        log.error("dead letter on %s for %s: %s", msg.subject, durable, reason)
        if pool is None:
            return
        await pool.execute(
            """INSERT INTO bus.dead_letters (consumer, subject, headers, data, reason)
               VALUES ($1, $2, $3, $4, $5)""",
            durable,
            msg.subject,
            dict(msg.headers or {}),
            msg.data.decode("utf-8", errors="replace"),
            reason,
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.nc is not None:
            # Handlers are stopped and every publish was acknowledged: nothing to drain.
            with contextlib.suppress(Exception):
                await self.nc.close()
            self.nc = None
