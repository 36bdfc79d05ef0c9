"""The outbox on a real PostgreSQL (docs/decisions/0013): rows of one dossier go out in order,
a row that fails on its own is parked after its attempts and the rows behind it go on, an
outage of the target uses no attempt, sent rows are purged after the retention."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from assistance import db, outbox
from assistance.bus import Bus
from assistance.events import Event
from assistance.failures import FailurePolicy
from assistance.outbox import CLAIM, EVENT, OutboxRelay
from deploy.local.stack import Endpoints, LocalStack, create_database
from tests.helpers import eventually

FAST = FailurePolicy(backoff_s=(0.0,), outage_first_s=0.0, outage_max_s=0.0, outbox_max_attempts=3)
STRICT = FailurePolicy(
    backoff_s=(0.0,), outage_first_s=0.0, outage_max_s=0.0, outbox_max_attempts=2
)


async def _pool(endpoints: Endpoints) -> asyncpg.Pool:
    url = await create_database(endpoints.database_url, f"ob_{uuid.uuid4().hex[:10]}")
    await db.migrate(url)
    return await db.create_pool(url, 3)


async def _drain_until_idle(relay: OutboxRelay, rounds: int = 20) -> None:
    for _ in range(rounds):
        await relay.drain()


async def test_rows_of_a_dossier_go_in_order_and_a_failing_row_is_parked(
    endpoints: Endpoints,
) -> None:
    pool = await _pool(endpoints)
    dossier, other = str(uuid.uuid4()), str(uuid.uuid4())
    sent: list[str] = []
    down = {"left": 5}

    async def ok(payload: dict[str, Any]) -> None:
        sent.append(payload["name"])

    async def bad(payload: dict[str, Any]) -> None:
        raise ValueError("address parts cannot contain CR or LF")

    async def unreachable_target(payload: dict[str, Any]) -> None:
        if down["left"]:
            down["left"] -= 1
            raise ConnectionRefusedError(111, "connection refused")
        sent.append(payload["name"])

    relay = OutboxRelay(
        pool,
        Bus("nats://127.0.0.1:1", policy=FAST),
        ["t"],
        senders={"ok_mail": ok, "bad_mail": bad, "down_mail": unreachable_target},
    )
    try:
        async with pool.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, "t", "bad_mail", {"name": "A", "dossier_id": dossier})
            await outbox.enqueue(conn, "t", "ok_mail", {"name": "B", "dossier_id": dossier})
            await outbox.enqueue(conn, "t", "down_mail", {"name": "C", "dossier_id": dossier})
            await outbox.enqueue(conn, "t", "ok_mail", {"name": "D", "dossier_id": dossier})
            await outbox.enqueue(conn, "t", "ok_mail", {"name": "X", "dossier_id": other})
        await relay.drain()
        # the other dossier is not held up; B waits behind A
        assert sent == ["X"]
        await _drain_until_idle(relay)
        # A parked after 3 attempts; B, C (through an outage of 5 tries), D in order
        assert sent == ["X", "B", "C", "D"]
        rows = await pool.fetch(
            "SELECT payload->>'name' AS name, status, attempts FROM bus.outbox ORDER BY id"
        )
        assert [tuple(r) for r in rows] == [
            ("A", "parked", 3),
            ("B", "done", 1),
            ("C", "done", 1),  # five refused connections counted nothing
            ("D", "done", 1),
            ("X", "done", 1),
        ]
        parked = await pool.fetch(
            "SELECT source, name, kind, dossier_id, attempts, error, state FROM bus.parked"
        )
        assert [dict(r) for r in parked] == [
            {
                "source": "outbox",
                "name": "t",
                "kind": "bad_mail",
                "dossier_id": uuid.UUID(dossier),
                "attempts": 3,
                "error": "gave up after 3 attempts: "
                "ValueError: address parts cannot contain CR or LF",
                "state": "open",
            }
        ]
    finally:
        await pool.close()


def test_rows_are_ordered_per_dossier_and_per_target() -> None:
    d = str(uuid.uuid4())
    assert outbox.ordering_key("publish", {"data": {"dossier_id": d}}) == d
    assert outbox.ordering_key("start_dossier", {"dossier_id": d}) == f"{d}:start_dossier"
    assert outbox.ordering_key("training_mail", {"dossier_id": d}) == f"{d}:smtp"
    assert outbox.ordering_key("training_invitation", {"invitation": {"dossier_id": d}}) == (
        f"{d}:smtp"
    )
    invitation = {"invitation": {"appointment_id": "a-1"}}
    assert outbox.ordering_key("training_invitation", invitation) == "appointment-a-1:smtp"
    assert outbox.ordering_key("publish", {"data": {"bug_id": "b-1"}}) is None


async def test_claim_is_index_backed_and_old_sent_rows_are_purged(endpoints: Endpoints) -> None:
    pool = await _pool(endpoints)
    try:
        async with pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO bus.outbox (source, kind, payload, ordering_key, status, done_at)
                   SELECT 't', 'publish', '{}'::jsonb, 'k' || (i % 50),
                          CASE WHEN i % 3 = 0 THEN 'pending' ELSE 'done' END,
                          CASE WHEN i % 3 = 0 THEN NULL
                               ELSE now() - make_interval(days => i % 10) END
                   FROM generate_series(1, 3000) AS i"""
            )
            await conn.execute("ANALYZE bus.outbox")
            async with conn.transaction():
                await conn.execute("SET LOCAL enable_seqscan = off")
                plan = "\n".join(
                    r[0]
                    for r in await conn.fetch(
                        "EXPLAIN "
                        + CLAIM.replace("$1::text[]", "ARRAY['t']")
                        .replace("$2", "200")
                        .replace("$3", "60")
                    )
                )
            assert "Seq Scan" not in plan, plan
            assert "outbox_pending_key" in plan, plan
            old = await conn.fetchval(
                """SELECT count(*) FROM bus.outbox
                   WHERE status = 'done' AND done_at < now() - interval '7 days'"""
            )
            left = await conn.fetchval("SELECT count(*) FROM bus.outbox") - old
            assert await outbox.purge(conn, ["t"], 7) == old
            assert await conn.fetchval("SELECT count(*) FROM bus.outbox") == left
            # done 7, 8 or 9 days before the insert (earlier than this now()), i % 3 != 0
            assert old == 600
    finally:
        await pool.close()


async def test_an_event_is_read_by_its_id_while_its_row_is_kept(endpoints: Endpoints) -> None:
    """`outbox.event`: pending, parked or sent, the event as enqueued, by one index probe;
    once its sent row is purged (or for an unknown id, another kind of row), None."""
    pool = await _pool(endpoints)
    dossier = str(uuid.uuid4())
    event = Event(id=f"{dossier}:received", type="intake.request.received", data={"n": 1})
    try:
        async with pool.acquire() as conn:
            await outbox.enqueue_event(conn, "t", event)
            await outbox.enqueue(conn, "t", "start_dossier", {"id": f"{dossier}:start"})
            assert await outbox.event(conn, event.id) == event
            assert await outbox.event(conn, f"{dossier}:start") is None
            assert await outbox.event(conn, f"{uuid.uuid4()}:received") is None
            for status in ("parked", "done"):
                await conn.execute(
                    "UPDATE bus.outbox SET status = $1, done_at = now() - interval '8 days'",
                    status,
                )
                assert await outbox.event(conn, event.id) == event, status
            await outbox.purge(conn, ["t"], 7)
            assert await outbox.event(conn, event.id) is None
            async with conn.transaction():
                await conn.execute("SET LOCAL enable_seqscan = off")
                plan = "\n".join(
                    r[0] for r in await conn.fetch("EXPLAIN " + EVENT.replace("$1", "'x'"))
                )
            assert "outbox_event_id" in plan, plan
    finally:
        await pool.close()


async def test_a_nats_outage_uses_no_attempt_of_an_outbox_row(
    endpoints: Endpoints, stack: LocalStack
) -> None:
    """The real thing: NATS stopped while the relay tries to publish. Three tries at the cap of
    two attempts would have parked the row; an outage parks nothing and counts nothing."""
    pool = await _pool(endpoints)
    bus = Bus(endpoints.nats_url, name="test-outbox-outage", policy=STRICT)
    await bus.connect()
    await bus.ensure_streams()
    relay = OutboxRelay(pool, bus, ["t"])
    subject = f"bugs.outage{uuid.uuid4().hex[:8]}.happened"
    event = Event(id=f"outage-{uuid.uuid4()}", type=subject, data={"n": 1})
    await stack.stop_nats()
    try:
        async with pool.acquire() as conn:
            await outbox.enqueue_event(conn, "t", event)
        for _ in range(3):
            await relay.drain()
        row = await pool.fetchrow("SELECT status, attempts, last_error FROM bus.outbox")
        assert (row["status"], row["attempts"], row["last_error"]) == ("pending", 0, None)
    finally:
        await stack.start_nats()
    try:

        async def sent() -> bool:
            await relay.drain()
            return await pool.fetchval("SELECT status FROM bus.outbox") == "done"

        await eventually(sent, timeout=60)
        assert await pool.fetchval("SELECT attempts FROM bus.outbox") == 1
        assert await pool.fetchval("SELECT count(*) FROM bus.parked") == 0
        sub = await bus.js.pull_subscribe(subject, durable=None, stream="BUGS")
        msgs = await sub.fetch(10, timeout=5)
        assert [Event.model_validate_json(m.data).id for m in msgs] == [event.id]
    finally:
        await bus.close()
        await pool.close()
