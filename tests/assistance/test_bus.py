"""The bus on a real JetStream: idempotent publish, redelivery, parking in PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from assistance import db
from assistance.bus import Bus, PoisonMessage
from assistance.events import Event
from deploy.local.stack import Endpoints, create_database
from tests.helpers import eventually


async def _fresh(endpoints: Endpoints) -> tuple[Bus, asyncpg.Pool]:
    url = await create_database(endpoints.database_url, f"bus_{uuid.uuid4().hex[:10]}")
    await db.migrate(url)
    bus = Bus(endpoints.nats_url, name="test-bus")
    await bus.connect()
    await bus.ensure_streams()
    return bus, await db.create_pool(url, 2)


async def test_same_msg_id_is_stored_once(endpoints: Endpoints) -> None:
    bus, pool = await _fresh(endpoints)
    try:
        subject = f"training.test.{uuid.uuid4().hex[:8]}"
        event = Event(id=f"once-{uuid.uuid4()}", type=subject, data={"n": 1})
        for _ in range(3):
            await bus.publish(event)
        sub = await bus.js.pull_subscribe(subject, durable=None, stream="TRAINING")
        msgs = await sub.fetch(10, timeout=2)
        assert len(msgs) == 1
        assert Event.model_validate_json(msgs[0].data) == event
        assert msgs[0].headers["Nats-Msg-Id"] == event.id
    finally:
        await bus.close()
        await pool.close()


async def test_failure_is_redelivered_and_poison_is_parked(
    endpoints: Endpoints,
) -> None:
    bus, pool = await _fresh(endpoints)
    suffix = uuid.uuid4().hex[:8]
    seen: list[str] = []
    failures = {"flaky": 1}

    async def handler(event: Event) -> None:
        seen.append(event.id)
        if event.data.get("poison"):
            raise PoisonMessage("cannot be handled")
        if failures.get(event.data.get("kind", "")):
            failures[event.data["kind"]] -= 1
            raise RuntimeError("database hiccup")

    consumer = asyncio.create_task(
        bus.consume(f"test-{suffix}", [f"bugs.test{suffix}.>"], handler, pool=pool)
    )
    try:
        await bus.publish(
            Event(id=f"f-{suffix}", type=f"bugs.test{suffix}.a", data={"kind": "flaky"})
        )
        await bus.publish(
            Event(id=f"p-{suffix}", type=f"bugs.test{suffix}.b", data={"poison": True})
        )
        await bus.js.publish(f"bugs.test{suffix}.c", b"not json at all", stream="BUGS")

        async def dead() -> list | None:
            rows = await pool.fetch(
                "SELECT subject, error AS reason FROM bus.parked WHERE name = $1 ORDER BY id",
                f"test-{suffix}",
            )
            return rows if len(rows) == 2 else None

        rows = await eventually(dead, timeout=15)
        assert [r["subject"] for r in rows] == [f"bugs.test{suffix}.b", f"bugs.test{suffix}.c"]
        assert all(r["reason"].startswith("poison:") for r in rows)
        await eventually(lambda: _count(seen, f"f-{suffix}", 2), timeout=15)
    finally:
        consumer.cancel()
        await bus.close()
        await pool.close()


async def _count(seen: list[str], event_id: str, n: int) -> bool:
    return seen.count(event_id) == n  # failed once, then handled on redelivery
