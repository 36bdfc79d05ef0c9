"""The transactional outbox: write an event (or a command) in the same transaction as the
change it reports; the relay gets it to NATS or Temporal afterwards, retrying (R13).

Woken by LISTEN/NOTIFY on commit, polling as a safety net; rows are locked with
SKIP LOCKED, so several relays never send the same row. Every hop is idempotent
(`Nats-Msg-Id`, workflow id = dossier id), so a row sent twice has one effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg
from opentelemetry import context as otel_context

from assistance import telemetry
from assistance.bus import Bus
from assistance.events import Event

log = logging.getLogger(__name__)

BATCH = 200
MAX_BACKOFF_S = 10.0
LEASE_S = 60.0  # a claimed row is due again after this, should its relay die mid-send

Sender = Callable[[dict[str, Any]], Awaitable[None]]


async def enqueue(
    conn: asyncpg.Connection, source: str, kind: str, payload: dict[str, Any]
) -> None:
    """Add a row inside the caller's transaction, with the current trace context."""
    await conn.execute(
        "INSERT INTO bus.outbox (source, kind, payload, trace) VALUES ($1, $2, $3, $4)",
        source,
        kind,
        payload,
        telemetry.inject(),
    )


async def enqueue_many(
    conn: asyncpg.Connection, source: str, rows: list[tuple[str, dict[str, Any]]]
) -> None:
    """Several rows in one round trip, in this order."""
    trace = telemetry.inject()
    await conn.executemany(
        "INSERT INTO bus.outbox (source, kind, payload, trace) VALUES ($1, $2, $3, $4)",
        [(source, kind, payload, trace) for kind, payload in rows],
    )


async def enqueue_event(conn: asyncpg.Connection, source: str, event: Event) -> None:
    await enqueue(conn, source, "publish", event.model_dump(mode="json"))


async def backlog(conn: asyncpg.Pool | asyncpg.Connection, source: str | None = None) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM bus.outbox WHERE done_at IS NULL AND ($1::text IS NULL "
        "OR source = $1)",
        source,
    )


def backoff(attempts: int) -> float:
    return min(0.5 * 2**attempts, MAX_BACKOFF_S)


class OutboxRelay:
    """Sends the rows of the given sources; `publish` rows go to NATS, other kinds to the
    senders given (e.g. intake's `start_dossier` to Temporal)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: Bus,
        sources: Iterable[str],
        senders: dict[str, Sender] | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.pool = pool
        self.sources = list(sources)
        self.senders: dict[str, Sender] = {
            "publish": lambda payload: bus.publish(Event.model_validate(payload)),
            **(senders or {}),
        }
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    async def run(self) -> None:
        async with self.pool.acquire() as listener:
            await listener.add_listener("bus_outbox", self._on_notify)
            try:
                while True:
                    if await self.drain():
                        continue
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            finally:
                await listener.remove_listener("bus_outbox", self._on_notify)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def drain(self) -> int:
        """Send one batch of due rows; returns how many were sent.

        Rows are claimed with a lease in a short transaction, then sent with no connection
        held: senders may use the pool themselves, so holding one across the sends could
        starve it. A row whose relay died mid-send is due again when its lease ends.
        """
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                """UPDATE bus.outbox SET next_attempt_at = now() + make_interval(secs => $3)
                   WHERE id IN (
                       SELECT id FROM bus.outbox
                       WHERE done_at IS NULL AND source = ANY($1::text[])
                         AND next_attempt_at <= now()
                       ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                   RETURNING id, kind, payload, trace, attempts""",
                self.sources,
                BATCH,
                LEASE_S,
            )
        if not rows:
            return 0
        rows = sorted(rows, key=lambda r: r["id"])
        results = await asyncio.gather(*(self._send(r) for r in rows))
        done = [r["id"] for r, err in zip(rows, results, strict=True) if err is None]
        failed = [(r, err) for r, err in zip(rows, results, strict=True) if err is not None]
        async with self.pool.acquire() as conn, conn.transaction():
            if done:
                await conn.execute(
                    "UPDATE bus.outbox SET done_at = now(), attempts = attempts + 1 "
                    "WHERE id = ANY($1::bigint[])",
                    done,
                )
            for row, err in failed:
                await conn.execute(
                    """UPDATE bus.outbox SET attempts = attempts + 1, last_error = $2,
                           next_attempt_at = now() + make_interval(secs => $3)
                       WHERE id = $1""",
                    row["id"],
                    (err or "")[:1000],
                    backoff(row["attempts"]),
                )
        return len(done)

    async def _send(self, row: asyncpg.Record) -> str | None:
        token = otel_context.attach(telemetry.extract(row["trace"]))
        try:
            await self.senders[row["kind"]](row["payload"])
            return None
        except Exception as exc:  # noqa: BLE001 - retried later with backoff
            log.info("outbox row %s not sent yet: %r", row["id"], exc)
            return repr(exc) or type(exc).__name__
        finally:
            otel_context.detach(token)
