"""R9: the weekly review's Temporal Schedule, on the real Temporal dev server.

The schedule's calendar is in Europe/Paris, so the review stays at its local time when the
clocks change: the UTC instant moves by an hour across both DST changes.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from temporalio.client import Client

from assistance import temporal
from assistance.settings import Settings
from services.evolutions.domain import ReviewSlot
from services.evolutions.settings import EvolutionsSettings
from tests.helpers import eventually
from workflows import review_schedules as schedules

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
async def client(settings: Settings, system) -> Client:
    return await temporal.connect(settings.temporal_address, lazy=False)


async def _next_times(client: Client, slot: ReviewSlot, start_at: datetime) -> list[datetime]:
    schedule = schedules.review_schedule("dst-check", slot, "Europe/Paris", "no-worker-here")
    schedule = replace(schedule, spec=replace(schedule.spec, start_at=start_at))
    handle = await client.create_schedule(f"test-dst-{uuid.uuid4().hex[:8]}", schedule)
    try:
        described = await handle.describe()
        return described.info.next_action_times[:4]
    finally:
        await handle.delete()


@pytest.mark.parametrize("month", [3, 10])  # spring forward, fall back
async def test_review_fires_weekly_at_ten_paris_time_across_dst(client: Client, month: int) -> None:
    year = datetime.now(UTC).year + 1  # always in the future of the server's clock
    start_at = datetime(year, month, 15, tzinfo=UTC)
    slot = ReviewSlot.parse("monday 10:00")
    fired = await _next_times(client, slot, start_at)
    assert fired == slot.next_times(start_at, "Europe/Paris", 4)
    local = [t.astimezone(PARIS) for t in fired]
    assert all((t.weekday(), t.hour, t.minute) == (0, 10, 0) for t in local)
    assert [b - a for a, b in zip(local, local[1:], strict=False)] == [timedelta(days=7)] * 3
    utc_hours = [t.astimezone(UTC).hour for t in fired]
    # winter 10:00 = 09:00 UTC, summer 10:00 = 08:00 UTC: the change falls inside the window
    assert sorted(set(utc_hours)) == [8, 9]
    assert utc_hours == sorted(utc_hours, reverse=(month == 3))


async def test_schedules_are_created_idempotently_and_updated(
    client: Client, settings: Settings
) -> None:
    software = f"horaire-{uuid.uuid4().hex[:8]}"
    handle = client.get_schedule_handle(schedules.schedule_id(software))
    monday = schedules.review_schedule(
        software, ReviewSlot.parse("monday 10:00"), "Europe/Paris", "no-worker-here"
    )
    thursday = schedules.review_schedule(
        software, ReviewSlot.parse("jeudi 14h30"), "Europe/Paris", "no-worker-here"
    )
    try:
        await schedules.ensure_schedule(client, software, monday)
        await schedules.ensure_schedule(client, software, monday)  # already exists: fine
        await schedules.ensure_schedule(client, software, thursday)  # updated in place
        described = await handle.describe()
        nxt = described.info.next_action_times[0].astimezone(PARIS)
        assert (nxt.weekday(), nxt.hour, nxt.minute) == (3, 14, 30)
        assert described.schedule.spec.time_zone_name == "Europe/Paris"
    finally:
        await handle.delete()


async def test_the_schedule_runs_the_review_on_the_worker(
    client: Client, settings: Settings, pool: asyncpg.Pool, software: str
) -> None:
    keeper = schedules.ScheduleKeeper(
        pool,
        client,
        EvolutionsSettings(review_at_by_software={software: "tuesday 14:30"}),
        settings.temporal_task_queue,
    )
    created = await keeper.ensure_all()
    try:
        assert software in created
        assert await keeper.ensure_all() == []  # ensured once per process
        handle = client.get_schedule_handle(schedules.schedule_id(software))
        nxt = (await handle.describe()).info.next_action_times[0].astimezone(PARIS)
        assert (nxt.weekday(), nxt.hour, nxt.minute) == (1, 14, 30)
        await handle.trigger()

        async def reviewed() -> int:
            return await pool.fetchval(
                "SELECT count(*) FROM evolutions.reviews WHERE software = $1", software
            )

        assert await eventually(reviewed, timeout=20) == 1
    finally:
        for code in created:
            await client.get_schedule_handle(schedules.schedule_id(code)).delete()
