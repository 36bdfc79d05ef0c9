"""The transactional outbox: write an event (or a command) in the same transaction as the
change it reports; the relay gets it to NATS or Temporal afterwards, retrying (R13).

Woken by LISTEN/NOTIFY on commit, polling as a safety net; rows are locked with
SKIP LOCKED, so several relays never send the same row. Every hop is idempotent
(`Nats-Msg-Id`, workflow id = dossier id), so a row sent twice has one effect.

The failure policy (assistance/failures.py, docs/decisions/0013): rows of one ordering key
(the dossier) go out in order, a row only once no earlier row of its key is pending; a
target that is down is waited for without counting; a row that fails on its own is tried
`OUTBOX_MAX_ATTEMPTS` times, then parked (status `parked` and a `bus.parked` row, in one
transaction) and the rows behind it go on; done rows are purged after
`OUTBOX_RETENTION_DAYS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg
from opentelemetry import trace

from assistance import telemetry
from assistance.bus import Bus
from assistance.events import Event
from assistance.failures import describe, is_outage, through_outages
from assistance.parking import ParkedItem, dossier_of, park

log = logging.getLogger(__name__)
_TRACER = telemetry.tracer("assistance.outbox")

BATCH = 200
LEASE_S = 60.0  # a claimed row is due again after this, should its relay die mid-send
PURGE_EVERY_S = 3600.0
INSERT = """INSERT INTO bus.outbox (source, kind, payload, trace, ordering_key)
            VALUES ($1, $2, $3, $4, $5)"""
# Due rows with no earlier pending row of their key; the NOT EXISTS is one probe of the
# partial index outbox_pending_key per candidate (tests/assistance/test_outbox_policy.py).
CLAIM = """UPDATE bus.outbox SET next_attempt_at = now() + make_interval(secs => $3)
   WHERE id IN (
       SELECT o.id FROM bus.outbox o
       WHERE o.status = 'pending' AND o.source = ANY($1::text[])
         AND o.next_attempt_at <= now()
         AND NOT EXISTS (
             SELECT 1 FROM bus.outbox e
             WHERE e.ordering_key = o.ordering_key AND e.status = 'pending' AND e.id < o.id)
       ORDER BY o.id LIMIT $2 FOR UPDATE SKIP LOCKED)
   RETURNING id, source, kind, payload, trace, attempts, ordering_key"""
# An event by its id: one probe of the index outbox_event_id.
EVENT = """SELECT payload FROM bus.outbox WHERE kind = 'publish' AND payload->>'id' = $1
           ORDER BY id LIMIT 1"""

Sender = Callable[[dict[str, Any]], Awaitable[None]]


def target_of(kind: str) -> str:
    """Where a row of this kind goes: NATS, a mail server, or a kind of its own (Temporal)."""
    if kind == "publish":
        return "nats"
    if kind.endswith(("mail", "invitation")):
        return "smtp"
    return kind


def ordering_key(kind: str, payload: dict[str, Any]) -> str | None:
    """Rows about one dossier and for one target go out in order: `<dossier id>` for its
    events, `<dossier id>:<target>` for the rest. Per target, so an outage of one (NATS)
    never holds the rows for another (Temporal: R13, the workflow still starts)."""
    key = dossier_of(payload)
    invitation = payload.get("invitation")
    if key is None and isinstance(invitation, dict):
        key = dossier_of(invitation)
        if key is None and invitation.get("appointment_id"):
            key = f"appointment-{invitation['appointment_id']}"  # its invitations, in order
    if key is None:
        return None
    target = target_of(kind)
    return key if target == "nats" else f"{key}:{target}"


async def enqueue(
    conn: asyncpg.Connection,
    source: str,
    kind: str,
    payload: dict[str, Any],
    *,
    key: str | None = None,
) -> None:
    """Add a row inside the caller's transaction, with the current trace context."""
    await conn.execute(
        INSERT, source, kind, payload, telemetry.inject(), key or ordering_key(kind, payload)
    )


async def enqueue_many(
    conn: asyncpg.Connection, source: str, rows: list[tuple[str, dict[str, Any]]]
) -> None:
    """Several rows in one round trip, in this order."""
    trace = telemetry.inject()
    await conn.executemany(
        INSERT,
        [(source, kind, payload, trace, ordering_key(kind, payload)) for kind, payload in rows],
    )


async def enqueue_event(conn: asyncpg.Connection, source: str, event: Event) -> None:
    await enqueue(conn, source, "publish", event.model_dump(mode="json"))


async def event(conn: asyncpg.Pool | asyncpg.Connection, event_id: str) -> Event | None:
    """The event of this id as its source enqueued it, while the outbox keeps its row: pending
    (NATS down), parked, or sent less than `OUTBOX_RETENTION_DAYS` ago. For a part that needs
    a fact another has just committed before the bus brings it (a dossier deposited while NATS
    is down). Past the retention the row is purged and this answers None: by then the fact is
    wherever its consumers put it (an erased one is never found: its payload is a tombstone).
    """
    payload = await conn.fetchval(EVENT, event_id)
    return None if payload is None else Event.model_validate(payload)


async def kept_events(
    conn: asyncpg.Pool | asyncpg.Connection, event_type: str, field: str, value: str
) -> list[Event]:
    """The events of this type the outbox still keeps (pending, parked, or sent less than
    `OUTBOX_RETENTION_DAYS` ago) whose data has `field` equal to `value` (case-insensitive):
    what another part has committed, which a consumer may not have applied yet (NATS down, or
    its consumer a moment behind). A scan of the kept rows of that type: for rare, rate-limited
    questions (a requester asking for their follow links), not for a page read."""
    rows = await conn.fetch(
        """SELECT payload FROM bus.outbox
           WHERE kind = 'publish' AND payload->>'type' = $1
             AND lower(payload->'data'->>$2) = lower($3)
           ORDER BY id""",
        event_type,
        field,
        value,
    )
    return [Event.model_validate(r["payload"]) for r in rows]


async def backlog(conn: asyncpg.Pool | asyncpg.Connection, source: str | None = None) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM bus.outbox WHERE status = 'pending' AND ($1::text IS NULL "
        "OR source = $1)",
        source,
    )


async def purge(conn: asyncpg.Pool | asyncpg.Connection, sources: list[str], days: float) -> int:
    """Forget rows sent more than `days` ago (they are in NATS, Temporal or a mailbox)."""
    result = await conn.execute(
        """DELETE FROM bus.outbox WHERE status = 'done' AND source = ANY($1::text[])
             AND done_at < now() - make_interval(secs => $2)""",
        sources,
        days * 86400.0,
    )
    return int(result.split()[-1])


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
        self.bus = bus
        self.policy = bus.policy
        self.sources = list(sources)
        self.senders: dict[str, Sender] = {
            "publish": lambda payload: bus.publish(Event.model_validate(payload)),
            **(senders or {}),
        }
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._outage_s = self.policy.outage_first_s
        self._purged_at: float | None = None

    async def run(self) -> None:
        """Send due rows until cancelled, or until the stop (`Bus.stop_pulling`): then the
        batch being sent is finished and recorded, and it returns."""
        async with self.pool.acquire() as listener:
            await listener.add_listener("bus_outbox", self._on_notify)
            try:
                with self.bus.drains():
                    while not self.bus.stopping:
                        await self._purge_now_and_then()
                        if await self.drain():
                            continue
                        self._wake.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            finally:
                await listener.remove_listener("bus_outbox", self._on_notify)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _purge_now_and_then(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._purged_at is None or now - self._purged_at >= PURGE_EVERY_S:
            self._purged_at = now
            with telemetry.quiet():
                gone = await purge(self.pool, self.sources, self.policy.outbox_retention_days)
            if gone:
                log.info("outbox %s: %d sent rows purged", self.sources, gone)

    async def drain(self) -> int:
        """Send one batch of due rows; returns how many were sent or parked.

        Rows are claimed with a lease in a short transaction, then sent with no connection
        held: senders may use the pool themselves, so holding one across the sends could
        starve it. A row whose relay died mid-send is due again when its lease ends.
        """
        # the claim and the bookkeeping are untraced: idle, the relay polls every
        # `poll_seconds`; each row's send is a span of its deposit's trace (`_send`)
        with telemetry.quiet():
            async with self.pool.acquire() as conn:
                rows = await conn.fetch(CLAIM, self.sources, BATCH, LEASE_S)
        if not rows:
            return 0
        rows = sorted(rows, key=lambda r: r["id"])
        results = await asyncio.gather(*(self._send(r) for r in rows))
        done = [r["id"] for r, err in zip(rows, results, strict=True) if err is None]
        failed = [(r, err) for r, err in zip(rows, results, strict=True) if err is not None]
        outages = [(r, e) for r, e in failed if is_outage(e)]
        if outages:
            delay = self._outage_s
            self._outage_s = min(delay * 2, self.policy.outage_max_s)
        else:
            delay = self._outage_s = self.policy.outage_first_s
        parked = 0

        async def record() -> None:
            nonlocal parked
            parked = 0
            async with self.pool.acquire() as conn, conn.transaction():
                if done:
                    await conn.execute(
                        """UPDATE bus.outbox SET status = 'done', done_at = now(),
                               attempts = attempts + 1 WHERE id = ANY($1::bigint[])""",
                        done,
                    )
                for row, _ in outages:  # the target is down: not the row's fault, not counted
                    await conn.execute(
                        """UPDATE bus.outbox SET next_attempt_at = now()
                               + make_interval(secs => $2) WHERE id = $1""",
                        row["id"],
                        delay,
                    )
                for row, err in failed:
                    if is_outage(err):
                        continue
                    parked += await self._failed(conn, row, err)

        with telemetry.quiet():
            await through_outages(record, self.policy, what=f"outbox {self.sources}")
        return len(done) + parked

    async def _failed(self, conn: asyncpg.Connection, row: asyncpg.Record, err: Exception) -> int:
        """Count an item failure; at the cap, park the row (one transaction with the count)."""
        attempts = row["attempts"] + 1
        error = describe(err)
        if attempts < self.policy.outbox_max_attempts:
            await conn.execute(
                """UPDATE bus.outbox SET attempts = $2, last_error = $3,
                       next_attempt_at = now() + make_interval(secs => $4)
                   WHERE id = $1""",
                row["id"],
                attempts,
                error,
                self.policy.backoff(attempts),
            )
            return 0
        await conn.execute(
            """UPDATE bus.outbox SET attempts = $2, last_error = $3, status = 'parked'
               WHERE id = $1""",
            row["id"],
            attempts,
            error,
        )
        await park(
            conn,
            ParkedItem(
                source="outbox",
                name=row["source"],
                ref=str(row["id"]),
                kind=row["kind"],
                subject=_subject(row),
                data=json.dumps(row["payload"], ensure_ascii=False),
                error=f"gave up after {attempts} attempts: {error}",
                attempts=attempts,
                dossier_id=_dossier_of_key(row["ordering_key"]),
            ),
        )
        log.error("outbox row %s parked after %d attempts: %s", row["id"], attempts, error)
        return 1

    async def _send(self, row: asyncpg.Record) -> Exception | None:
        """Send one row, in a span of the trace that wrote it (its `trace` column)."""
        with _TRACER.start_as_current_span(
            f"outbox send {row['kind']}",
            context=telemetry.extract(row["trace"]),
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "outbox.id": row["id"],
                "outbox.source": row["source"],
                "outbox.kind": row["kind"],
                "outbox.attempt": row["attempts"] + 1,
            },
        ) as span:
            try:
                sender = self.senders.get(row["kind"])
                if sender is None:
                    raise LookupError(f"no sender for outbox kind {row['kind']!r}")
                await sender(row["payload"])
                return None
            except Exception as exc:  # noqa: BLE001 - waited for, retried with backoff, or parked
                log.info("outbox row %s not sent yet: %r", row["id"], exc)
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
                return exc


def _subject(row: asyncpg.Record) -> str:
    payload = row["payload"]
    if row["kind"] == "publish" and isinstance(payload, dict):
        return str(payload.get("type", "publish"))
    return str(row["kind"])


def _dossier_of_key(key: str | None) -> str | None:
    if not key:
        return None
    try:
        return str(uuid.UUID(key.split(":", 1)[0]))
    except ValueError:
        return None
