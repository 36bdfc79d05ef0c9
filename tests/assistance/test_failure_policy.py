"""The failure policy on real JetStream, PostgreSQL and Temporal (docs/decisions/0013): an
outage is waited for without using up attempts, an item that fails is parked after a bounded
number of attempts and the stream goes on. Backoffs are shortened by the policy, so what takes
minutes in production takes seconds here."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from nats.js.errors import NotFoundError

from assistance import db
from assistance import temporal as temporal_client
from assistance.bus import Bus
from assistance.events import Event
from assistance.failures import FailurePolicy, TransientError, is_outage
from deploy.local.stack import Endpoints, LocalStack, create_database
from tests.helpers import eventually
from workflows.bridge import SignalBridge

FAST = FailurePolicy(
    max_attempts=3, backoff_s=(0.2,), outage_first_s=0.05, outage_max_s=0.2, heartbeat_s=0.1
)


async def _fresh(endpoints: Endpoints, policy: FailurePolicy = FAST) -> tuple[Bus, asyncpg.Pool]:
    url = await create_database(endpoints.database_url, f"fp_{uuid.uuid4().hex[:10]}")
    await db.migrate(url)
    bus = Bus(endpoints.nats_url, name="test-failure-policy", policy=policy)
    await bus.connect()
    await bus.ensure_streams()
    return bus, await db.create_pool(url, 3)


def test_outage_and_item_failures_are_told_apart() -> None:
    assert is_outage(TransientError("later"))
    assert is_outage(ConnectionRefusedError(111, "refused"))
    assert is_outage(asyncpg.exceptions.ConnectionDoesNotExistError("closed"))
    assert is_outage(asyncpg.exceptions.CannotConnectNowError("starting up"))
    wrapped = RuntimeError("publish failed")
    wrapped.__cause__ = TimeoutError()
    assert is_outage(wrapped)
    assert is_outage(RuntimeError("Failed client connect: Server connection error: tcp connect"))
    assert not is_outage(RuntimeError("Failed to encode"))
    assert not is_outage(ValueError("address parts cannot contain CR or LF"))
    assert not is_outage(asyncpg.exceptions.CharacterNotInRepertoireError("0x00"))
    assert not is_outage(asyncpg.exceptions.DataError("invalid input for query argument"))
    assert not is_outage(KeyError("training"))


async def test_an_outage_uses_no_attempt_and_a_failing_item_is_parked_after_three(
    endpoints: Endpoints,
) -> None:
    bus, pool = await _fresh(endpoints)
    suffix = uuid.uuid4().hex[:8]
    durable = f"fp-{suffix}"
    calls: dict[str, int] = {}

    async def handler(event: Event) -> None:
        calls[event.id] = calls.get(event.id, 0) + 1
        if event.data["what"] == "outage" and calls[event.id] <= 12:
            raise ConnectionRefusedError(111, "PostgreSQL is restarting")
        if event.data["what"] == "bad":
            raise KeyError("training")

    consumer = asyncio.create_task(bus.consume(durable, [f"bugs.fp{suffix}.>"], handler, pool=pool))
    try:
        ids = [f"{k}-{suffix}" for k in ("outage", "bad", "after")]
        for kind, event_id in zip(("outage", "bad", "ok"), ids, strict=True):
            await bus.publish(
                Event(id=event_id, type=f"bugs.fp{suffix}.{kind}", data={"what": kind})
            )

        async def after_handled_and_bad_parked() -> bool:
            parked = await pool.fetchval("SELECT count(*) FROM bus.parked")
            return calls.get(ids[2]) == 1 and parked == 1

        # the stream goes on: the message behind the failing one is not held up by it
        await eventually(after_handled_and_bad_parked, timeout=30)
        # the outage lasted 12 tries, four times the attempts allowed, and parked nothing
        assert calls[ids[0]] == 13
        # the failing item was tried exactly max_attempts times, then parked
        assert calls[ids[1]] == 3
        rows = await pool.fetch(
            """SELECT source, name, subject, error, attempts, state FROM bus.parked
               WHERE name = $1""",
            durable,
        )
        assert [dict(r) for r in rows] == [
            {
                "source": "consumer",
                "name": durable,
                "subject": f"bugs.fp{suffix}.bad",
                "error": "gave up after 3 attempts: KeyError('training')",
                "attempts": 3,
                "state": "open",
            }
        ]
        info = await bus.js.consumer_info("BUGS", durable)
        assert info.num_ack_pending == 0
        assert info.num_pending == 0
        assert info.config.max_deliver == -1
    finally:
        consumer.cancel()
        await bus.close()
        await pool.close()


async def test_a_temporal_outage_longer_than_every_attempt_parks_nothing(
    endpoints: Endpoints, stack: LocalStack
) -> None:
    """The signal bridge waits for Temporal: a training fact is not lost because Temporal was
    paused longer than the item-failure backoff (issue 11: 10 minutes in production)."""
    bus, pool = await _fresh(endpoints)
    suffix = uuid.uuid4().hex[:8]
    durable = f"fp-bridge-{suffix}"
    client = await temporal_client.connect(endpoints.temporal_address, "default")
    bridge = SignalBridge(client)
    handled: list[str] = []

    async def handler(event: Event) -> None:
        await bridge(event)
        handled.append(event.id)

    consumer = asyncio.create_task(
        bus.consume(durable, [f"training.fp{suffix}.>"], handler, pool=pool)
    )
    await stack.stop_temporal()
    try:
        event = Event(
            id=f"held-{suffix}",
            type=f"training.fp{suffix}.held",
            data={"dossier_id": str(uuid.uuid4())},
        )
        await bus.publish(event)
        # three attempts at 0.2 s would be spent in under a second; wait much longer
        await asyncio.sleep(6)
        assert handled == []
        assert await pool.fetchval("SELECT count(*) FROM bus.parked") == 0
    finally:
        await stack.start_temporal()
    try:

        async def done() -> bool:
            return handled == [event.id]

        await eventually(done, timeout=60)
        assert await pool.fetchval("SELECT count(*) FROM bus.parked") == 0
        info = await bus.js.consumer_info("TRAINING", durable)
        assert info.num_ack_pending == 0
        assert info.num_redelivered == 0  # waited in process, never redelivered
    finally:
        consumer.cancel()
        await bus.close()
        await pool.close()


async def test_a_parking_that_fails_keeps_the_message_until_it_succeeds(
    endpoints: Endpoints,
) -> None:
    """The message is terminated only once its parked row is committed: while the parking
    cannot be written, the message stays held (not acknowledged, not terminated, not lost)."""
    bus, pool = await _fresh(endpoints, FailurePolicy(max_attempts=1, outage_max_s=0.2))
    suffix = uuid.uuid4().hex[:8]
    durable = f"fp-park-{suffix}"

    async def handler(event: Event) -> None:
        raise KeyError("training")

    await pool.execute("ALTER TABLE bus.parked RENAME TO parked_away")
    consumer = asyncio.create_task(bus.consume(durable, [f"bugs.fp{suffix}.>"], handler, pool=pool))
    try:
        await bus.publish(Event(id=f"held-{suffix}", type=f"bugs.fp{suffix}.a", data={}))

        async def held() -> bool:
            try:
                info = await bus.js.consumer_info("BUGS", durable)
            except NotFoundError:
                return False  # the consuming task has not created its durable consumer yet
            return info.num_ack_pending == 1 and info.num_pending == 0

        await eventually(held, timeout=30)
        await asyncio.sleep(3)  # the parking keeps failing: the message is still held
        info = await bus.js.consumer_info("BUGS", durable)
        assert (info.num_ack_pending, info.num_redelivered) == (1, 0)
        await pool.execute("ALTER TABLE bus.parked_away RENAME TO parked")

        async def parked() -> bool:
            rows = await pool.fetchval("SELECT count(*) FROM bus.parked WHERE name = $1", durable)
            info = await bus.js.consumer_info("BUGS", durable)
            return rows == 1 and info.num_ack_pending == 0

        await eventually(parked, timeout=30)
    finally:
        consumer.cancel()
        await bus.close()
        await pool.close()
