"""NATS JetStream: streams per bounded context, idempotent publish, durable pull consumers.

NATS is a transport, not the system of record. The failure policy (assistance/failures.py,
docs/decisions/0013): a dependency that is down is waited for in process, the message kept
(`in_progress`), uncounted; a message that fails on its own is redelivered with backoff a
bounded number of times, then parked in `bus.parked` and only then terminated; the stream
goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

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
from assistance.failures import DEFAULT, FailurePolicy, Outage, TransientError, is_outage
from assistance.parking import ParkedItem, dossier_of, park_durably

log = logging.getLogger(__name__)
_TRACER = telemetry.tracer("assistance.bus")

# One stream per bounded context.
STREAMS: dict[str, list[str]] = {
    "INTAKE": ["intake.>"],
    "DOSSIER": ["dossier.>"],
    "TRAINING": ["training.>"],
    "BUGS": ["bugs.>"],
    "EVOLUTIONS": ["evolutions.>"],
}
DUPLICATE_WINDOW_S = 24 * 3600
ACK_WAIT_S = 30.0
# A re-published parked message names the one durable consumer it is for; others skip it.
RETRY_FOR = "Assistance-Retry-For"

Handler = Callable[[Event], Awaitable[None]]
__all__ = ["Bus", "PoisonMessage", "TransientError", "stream_for"]


class PoisonMessage(Exception):
    """Raise from a handler for a message that can never be handled."""


def servers(url: str) -> list[str]:
    """The servers of `NATS_URL`: one URL, or a cluster's, comma-separated (a client starts
    with whichever answers, and moves to another node when its own goes away)."""
    return [part.strip() for part in url.split(",") if part.strip()]


def stream_for(subject: str) -> str:
    prefix = subject.split(".", 1)[0].upper()
    if prefix not in STREAMS:
        raise ValueError(f"no stream carries subject {subject!r}")
    return prefix


class Bus:
    def __init__(
        self,
        url: str,
        name: str = "assistance",
        replicas: int = 1,
        policy: FailurePolicy = DEFAULT,
    ) -> None:
        self.url = url
        self.policy = policy
        self.name = name
        self.replicas = replicas
        self.nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = asyncio.Event()
        # at the stop: consumers (and outbox relays) finish what they hold and return; the
        # tasks doing so are waited for (assistance/runtime.py) instead of being cancelled
        self.stopping = False
        self.draining: set[asyncio.Task[Any]] = set()

    def stop_pulling(self) -> None:
        self.stopping = True

    @contextlib.contextmanager
    def drains(self) -> Iterator[None]:
        """The current task stops by itself once `stopping` (it checks between batches)."""
        task = asyncio.current_task()
        if task is not None:
            self.draining.add(task)
        try:
            yield
        finally:
            if task is not None:
                self.draining.discard(task)

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
                        servers(self.url),
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
                found = (await self.js.stream_info(name)).config
            except NotFoundError:
                await self.js.add_stream(config)
                continue
            # updated only when it differs: in a cluster every update is a round of the meta
            # group, and every replica of every part passes here at start
            if (
                found.subjects != subjects
                or found.num_replicas != self.replicas
                or found.duplicate_window != DUPLICATE_WINDOW_S
                or found.storage != StorageType.FILE
            ):
                await self.js.update_stream(config)

    async def publish(self, event: Event) -> None:
        """Publish once: JetStream drops a second message with the same `Nats-Msg-Id`.

        A producer span; its context rides in the headers, so the consumers' spans are its
        children."""
        with _TRACER.start_as_current_span(
            f"{event.type} publish",
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "publish",
                "messaging.destination.name": event.type,
                "messaging.message.id": event.id,
            },
        ):
            headers = telemetry.inject({"Nats-Msg-Id": event.id})
            await self.js.publish(
                event.type,
                event.model_dump_json().encode(),
                stream=stream_for(event.type),
                headers=headers,
            )

    async def republish(self, subject: str, data: bytes, msg_id: str, durable: str) -> None:
        """Deliver a parked message again, to the one consumer that parked it."""
        headers = telemetry.inject({"Nats-Msg-Id": msg_id, RETRY_FOR: durable})
        await self.js.publish(subject, data, stream=stream_for(subject), headers=headers)

    async def consume(
        self,
        durable: str,
        subjects: list[str],
        handler: Handler,
        *,
        pool: asyncpg.Pool | None = None,
        batch: int = 50,
    ) -> None:
        """Run a durable pull consumer until cancelled, or until the stop: then it pulls no
        more, finishes (acks) the batch it holds and returns."""
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
            # we count item failures ourselves (outages are not failures): JetStream must never
            # drop a message behind our back
            max_deliver=-1,
            backoff=None,
            ack_wait=ACK_WAIT_S,
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
        with self.drains():
            while not self.stopping:
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
                for i, msg in enumerate(msgs):
                    await self._handle(msg, handler, tracer, durable, pool, msgs[i:])

    async def _handle(
        self,
        msg: Msg,
        handler: Handler,
        tracer: trace.Tracer,
        durable: str,
        pool: asyncpg.Pool | None,
        held: list[Msg],
    ) -> None:
        """Handle one message: ack, or redeliver with backoff, or park then terminate.

        `num_delivered` counts this message's item failures: a delivery ends in an ack, a
        `nak` for an item failure, or a park; an outage is waited for within the delivery
        (every message of the batch kept alive with `in_progress`), so it never adds one.
        """
        retry_for = (msg.headers or {}).get(RETRY_FOR)
        if retry_for and retry_for != durable:
            await _settle(msg.ack())  # a parked message replayed for another consumer
            return

        async def keepalive() -> None:
            await asyncio.gather(*(m.in_progress() for m in held), return_exceptions=True)

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
            except ValidationError as exc:
                await self._park(msg, durable, pool, f"poison: {exc}", delivered, keepalive)
                return
            outage = Outage(self.policy)
            while True:
                try:
                    await handler(event)
                    break
                except asyncio.CancelledError:
                    raise
                except PoisonMessage as exc:
                    await self._park(msg, durable, pool, f"poison: {exc}", delivered, keepalive)
                    return
                except Exception as exc:  # noqa: BLE001 - waited for, retried, or parked
                    if is_outage(exc):
                        if outage.waits % 20 == 0:
                            log.warning("%s waits for a dependency: %r", durable, exc)
                        await outage.wait(keepalive)
                        continue
                    if delivered >= self.policy.max_attempts or pool is None:
                        reason = f"gave up after {delivered} attempts: {exc!r}"
                        await self._park(msg, durable, pool, reason, delivered, keepalive)
                    else:
                        log.warning("handler %s failed (%r), attempt %d", durable, exc, delivered)
                        await _settle(msg.nak(delay=self.policy.backoff(delivered)))
                    return
            await _settle(msg.ack())

    async def _park(
        self,
        msg: Msg,
        durable: str,
        pool: asyncpg.Pool | None,
        reason: str,
        attempts: int,
        keepalive: Callable[[], Awaitable[None]],
    ) -> None:
        """Park, and terminate only once the parked row is committed (never lose it)."""
        log.error("parking message on %s for %s: %s", msg.subject, durable, reason)
        if pool is None:
            await _settle(msg.nak(delay=self.policy.outage_max_s))  # nowhere to park: keep it
            return
        data = msg.data.decode("utf-8", errors="replace")
        try:
            payload = Event.model_validate_json(msg.data).model_dump(mode="json")
        except ValidationError:
            payload = None
        meta = msg.metadata
        ref = f"{meta.stream}:{meta.sequence.stream}" if meta else f"{msg.subject}:{data[:64]}"
        item = ParkedItem(
            source="consumer",
            name=durable,
            ref=ref,
            subject=msg.subject,
            data=data,
            error=reason,
            attempts=attempts,
            dossier_id=dossier_of(payload),
            headers=dict(msg.headers or {}),
        )
        await park_durably(pool, item, self.policy, keepalive)
        await _settle(msg.term())

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


async def _settle(done: Awaitable[None]) -> None:
    """Ack, nak or term; if NATS is away the message is simply redelivered later."""
    try:
        await done
    except Exception as exc:  # noqa: BLE001 - redelivery covers it; handlers are idempotent
        log.info("could not settle a message: %r", exc)
