"""R7: double booking is impossible, even with many hand-overs at once (PostgreSQL's exclusion
constraint, on the real database). The clock is fixed so the capacity is exact."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from services.training import booking
from services.training.context import Context
from services.training.models import HandOverIn
from services.training.settings import TrainingSettings
from tests.services.training.support import NewTrainer, hand_over_order

PARIS = ZoneInfo("Europe/Paris")
# Tuesday 16 September 2031, 08:00: the window is Tuesday and Wednesday, 8 one-hour slots each
NOW = datetime(2031, 9, 16, 8, tzinfo=PARIS)
HAND_OVERS = 20
CAPACITY = 16


@pytest.fixture
def ctx(system, pool: asyncpg.Pool) -> Context:
    app = system.app
    return Context(pool, system.settings, app.state.calendar, TrainingSettings(), lambda: NOW)


async def test_twenty_concurrent_bookings_never_overlap(
    ctx: Context, pool: asyncpg.Pool, software: str, new_trainer: NewTrainer
) -> None:
    fanny = await new_trainer(software)
    orders = [HandOverIn.model_validate(hand_over_order(software)) for _ in range(HAND_OVERS)]

    answers = await asyncio.gather(*(booking.open_request(ctx, o) for o in orders))

    booked = [a for a in answers if a["status"] == "booked"]
    unavailable = [a for a in answers if a["status"] == "unavailable"]
    assert len(booked) == CAPACITY and len(unavailable) == HAND_OVERS - CAPACITY
    starts = sorted(datetime.fromisoformat(a["starts_at"]) for a in booked)
    expected = [
        datetime(2031, 9, day, hour, tzinfo=PARIS)
        for day in (16, 17)
        for hour in (9, 10, 11, 13, 14, 15, 16, 17)
    ]
    assert starts == expected  # packed hour after hour, never across lunch
    assert {a["trainer_id"] for a in booked} == {str(fanny.id)}
    # the ones left over are escalated with Thursday's first slots (never a silent slip)
    for answer in unavailable:
        assert answer["reason"] == "no_slot"
        assert [a["starts_at"] for a in answer["alternatives"]] == [
            datetime(2031, 9, 18, 9, tzinfo=PARIS).isoformat(),
            datetime(2031, 9, 18, 9, 30, tzinfo=PARIS).isoformat(),
            datetime(2031, 9, 18, 10, tzinfo=PARIS).isoformat(),
        ]

    overlaps = await pool.fetchval(
        """SELECT count(*) FROM training.appointments a JOIN training.appointments b
             ON a.trainer_id = b.trainer_id AND a.id < b.id
            AND tstzrange(a.starts_at, a.ends_at) && tstzrange(b.starts_at, b.ends_at)
            AND a.status <> 'cancelled' AND b.status <> 'cancelled'
           WHERE a.trainer_id = $1""",
        fanny.id,
    )
    assert overlaps == 0


async def test_the_database_refuses_an_overlap_whoever_writes(
    ctx: Context, pool: asyncpg.Pool, software: str, new_trainer: NewTrainer
) -> None:
    fanny = await new_trainer(software)
    answer = await booking.open_request(ctx, HandOverIn.model_validate(hand_over_order(software)))
    assert answer["starts_at"] == NOW.replace(hour=9).isoformat()
    row = await pool.fetchrow(
        "SELECT * FROM training.appointments WHERE id = $1", uuid.UUID(answer["appointment_id"])
    )
    # rows as the product writes them (a real brief), since the shared system lists them later
    insert = """INSERT INTO training.appointments (id, request_id, dossier_id, trainer_id,
                    starts_at, ends_at, status, link, brief)
                VALUES ($1, $2, $3, $4, $5, $6, $7, 'x', $8)"""
    half_past = row["starts_at"] + timedelta(minutes=30)
    with pytest.raises(asyncpg.ExclusionViolationError):
        await pool.execute(
            insert, uuid.uuid4(), row["request_id"], row["dossier_id"], fanny.id,
            half_past, half_past + timedelta(hours=1), "booked", row["brief"],
        )  # fmt: skip
    # back to back is fine, and a cancelled appointment frees its time
    await pool.execute(
        insert, uuid.uuid4(), row["request_id"], row["dossier_id"], fanny.id,
        row["ends_at"], row["ends_at"] + timedelta(hours=1), "booked", row["brief"],
    )  # fmt: skip
    await pool.execute(
        insert, uuid.uuid4(), row["request_id"], row["dossier_id"], fanny.id,
        half_past, half_past + timedelta(hours=1), "cancelled", row["brief"],
    )  # fmt: skip
