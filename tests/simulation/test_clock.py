"""Simulated time: people wake in order, on the tick, and the clock waits for everyone busy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from simulation.clock import Bell, Clock

START = datetime(2032, 5, 3, 9, 0, tzinfo=UTC)


class FakeServer:
    """Skips as asked, and remembers where to."""

    def __init__(self) -> None:
        self.skips: list[datetime] = []

    async def __call__(self, at: datetime) -> datetime:
        self.skips.append(at)
        return at


async def test_people_wake_in_order_at_their_instant_rounded_up_to_the_tick() -> None:
    clock, server, seen = Clock(START), FakeServer(), []

    async def person(name: str, minutes: float) -> None:
        await clock.sleep(timedelta(minutes=minutes))
        seen.append((name, clock.now))
        await clock.sleep(timedelta(minutes=2))
        seen.append((name, clock.now))

    clock.spawn(person("b", 5.5))
    clock.spawn(person("a", 1))
    await clock.advance(START + timedelta(minutes=30), server, land=True)
    minute = timedelta(minutes=1)
    assert seen == [
        ("a", START + minute),
        ("a", START + 3 * minute),
        ("b", START + 6 * minute),  # 5.5 minutes: the next tick
        ("b", START + 8 * minute),
    ]
    assert server.skips == [START + m * minute for m in (1, 3, 6, 8, 30)]
    assert clock.now == START + 30 * minute


async def test_the_server_is_moved_only_to_instants_someone_waits_for() -> None:
    clock, server = Clock(START), FakeServer()

    async def person() -> None:
        await clock.sleep(timedelta(minutes=3))

    clock.spawn(person())
    await clock.advance(START + timedelta(hours=1), server)
    assert server.skips == [START + timedelta(minutes=3)]
    assert clock.now == START + timedelta(hours=1)


async def test_the_clock_waits_for_someone_busy_before_moving_on() -> None:
    clock, server, seen = Clock(START), FakeServer(), []

    async def slow() -> None:
        await asyncio.sleep(0.05)  # a command in flight: real time, not simulated time
        seen.append(("slow", clock.now))
        await clock.sleep_until(START + timedelta(minutes=1))
        seen.append(("slow again", clock.now))

    clock.spawn(slow())
    await clock.advance(START + timedelta(minutes=2), server)
    assert seen == [("slow", START), ("slow again", START + timedelta(minutes=1))]


async def test_a_bell_wakes_whoever_waits_for_work() -> None:
    clock, server = Clock(START), FakeServer()
    bell, woken = Bell(clock), []

    async def worker() -> None:
        await bell.wait()
        woken.append(clock.now)

    async def caller() -> None:
        await clock.sleep_until(START + timedelta(minutes=10))
        bell.ring()

    clock.spawn(worker())
    clock.spawn(caller())
    await clock.advance(START + timedelta(hours=1), server)
    assert woken == [START + timedelta(minutes=10)]


async def test_a_failure_of_a_simulated_person_stops_the_run() -> None:
    clock = Clock(START)

    async def broken() -> None:
        await clock.sleep(timedelta(minutes=1))
        raise RuntimeError("dossier refused for ever")

    clock.spawn(broken())
    with pytest.raises(RuntimeError, match="refused for ever"):
        await clock.advance(START + timedelta(minutes=5), FakeServer())
    await clock.stop()


def test_instants_round_up_to_the_tick_in_any_time_zone() -> None:
    clock = Clock(START, tick=timedelta(minutes=5))
    local = datetime.fromisoformat("2032-05-03T11:01:30+02:00")
    assert clock.on_tick(local) == datetime.fromisoformat("2032-05-03T11:05:00+02:00")
    assert clock.on_tick(local).utcoffset() == timedelta(hours=2)
    assert clock.on_tick(START) == START
