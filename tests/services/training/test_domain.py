"""Slot search (R7), pure: lunch breaks, weekends, holidays, DST, absences, alternatives."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistance.business_time import DEFAULT_CALENDAR as CAL
from assistance.errors import DomainError
from services.training import domain
from services.training.domain import Agenda, SlotPolicy

PARIS = ZoneInfo("Europe/Paris")
HOUR = timedelta(hours=1)
NO_NOTICE = SlotPolicy(notice=timedelta(0))
FANNY = Agenda(uuid.UUID(int=1), "Fanny")
BRUNO = Agenda(uuid.UUID(int=2), "Bruno")


def paris(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=PARIS)


def first(now: datetime, *agendas: Agenda, policy: SlotPolicy = NO_NOTICE) -> domain.Slot:
    plan = domain.plan(CAL, agendas or (FANNY,), now, policy)
    assert plan.window, "expected a slot in the R7 window"
    return plan.window[0]


def busy(agenda: Agenda, *intervals: tuple[datetime, datetime]) -> Agenda:
    return Agenda(agenda.trainer_id, agenda.name, appointments=tuple(intervals))


# --- lunch break and closing -----------------------------------------------------------------


def test_an_appointment_never_straddles_lunch() -> None:
    # Tuesday 11:15: 11:30-12:30 would cross the 12:00-13:00 break, so 13:00
    slot = first(paris(2026, 6, 2, 11, 15))
    assert (slot.starts_at, slot.ends_at) == (paris(2026, 6, 2, 13), paris(2026, 6, 2, 14))


def test_an_appointment_may_end_exactly_at_closing() -> None:
    slot = first(paris(2026, 6, 2, 10, 40))
    assert (slot.starts_at, slot.ends_at) == (paris(2026, 6, 2, 11), paris(2026, 6, 2, 12))


def test_starts_fall_on_the_grid_after_the_notice() -> None:
    policy = SlotPolicy(notice=timedelta(minutes=30))
    assert first(paris(2026, 6, 2, 9, 5), policy=policy).starts_at == paris(2026, 6, 2, 10)
    assert first(paris(2026, 6, 2, 8, 0), policy=policy).starts_at == paris(2026, 6, 2, 9)


def test_after_the_last_slot_of_the_day_the_next_business_day_opens() -> None:
    # 17:30 Tuesday: 17:30-18:30 passes closing time → Wednesday 09:00
    assert first(paris(2026, 6, 2, 17, 30)).starts_at == paris(2026, 6, 3, 9)


def test_a_busy_trainer_is_booked_after_their_appointment() -> None:
    fanny = busy(FANNY, (paris(2026, 6, 2, 13), paris(2026, 6, 2, 14)))
    assert first(paris(2026, 6, 2, 12, 30), fanny).starts_at == paris(2026, 6, 2, 14)


# --- weekends and holidays ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (paris(2026, 6, 5, 17, 30), paris(2026, 6, 8, 9)),  # Friday evening → Monday
        (paris(2026, 6, 6, 10), paris(2026, 6, 8, 9)),  # Saturday → Monday
        (paris(2026, 6, 7, 23, 59), paris(2026, 6, 8, 9)),  # Sunday night → Monday
    ],
)
def test_weekend_requests_go_to_monday(now: datetime, expected: datetime) -> None:
    assert first(now).starts_at == expected


def test_holidays_are_skipped() -> None:
    # Wednesday evening before Ascension (Thursday 14 May 2026) → Friday 15
    assert first(paris(2026, 5, 13, 17, 45)).starts_at == paris(2026, 5, 15, 9)
    # Thursday 30 April evening: 1 May is a Friday holiday → Monday 4 May
    assert first(paris(2026, 4, 30, 17, 45)).starts_at == paris(2026, 5, 4, 9)
    # On a holiday itself, the next business day is the window
    assert first(paris(2026, 5, 14, 10)).starts_at == paris(2026, 5, 15, 9)


def test_the_window_is_today_and_the_next_business_day_only() -> None:
    # Saturday: the window is Saturday (closed) and Monday; Monday full → nothing in R7 terms
    monday = paris(2026, 6, 8)
    fanny = busy(FANNY, (monday + timedelta(hours=9), monday + timedelta(hours=18)))
    plan = domain.plan(CAL, [fanny], paris(2026, 6, 6, 10), NO_NOTICE)
    assert plan.window == []
    # ... and the lead is offered Tuesday's first slots, one per start time
    assert [s.starts_at for s in plan.alternatives] == [
        paris(2026, 6, 9, 9),
        paris(2026, 6, 9, 9, 30),
        paris(2026, 6, 9, 10),
    ]
    assert {s.trainer_id for s in plan.alternatives} == {FANNY.trainer_id}


# --- DST -------------------------------------------------------------------------------------


def test_spring_forward_keeps_nine_o_clock_local() -> None:
    # Friday 27 March 2026 (UTC+1) evening → Monday 30 March (UTC+2, after 29 March's change)
    slot = first(paris(2026, 3, 27, 18))
    assert slot.starts_at == paris(2026, 3, 30, 9)
    assert slot.starts_at.utcoffset() == timedelta(hours=2)
    assert slot.starts_at.astimezone(UTC).time() == time(7)
    assert slot.ends_at - slot.starts_at == HOUR


def test_fall_back_keeps_nine_o_clock_local() -> None:
    slot = first(paris(2026, 10, 23, 18))
    assert slot.starts_at == paris(2026, 10, 26, 9)
    assert slot.starts_at.utcoffset() == timedelta(hours=1)
    assert slot.starts_at.astimezone(UTC).time() == time(8)


def test_grid_on_the_day_after_a_dst_change_is_wall_clock() -> None:
    starts = [
        s for s, _ in domain.start_times(CAL, date(2026, 3, 30), NO_NOTICE, paris(2026, 3, 30))
    ]
    assert [s.astimezone(PARIS).strftime("%H:%M") for s in starts] == [
        "09:00", "09:30", "10:00", "10:30", "11:00",
        "13:00", "13:30", "14:00", "14:30", "15:00", "15:30", "16:00", "16:30", "17:00",
    ]  # fmt: skip


# --- trainers: absences, load, nobody -----------------------------------------------------------


def test_an_absent_trainer_is_not_booked() -> None:
    fanny = Agenda(
        FANNY.trainer_id, "Fanny", absences=((paris(2026, 6, 2, 9), paris(2026, 6, 2, 12)),)
    )
    slot = first(paris(2026, 6, 2, 8), fanny, BRUNO)
    assert (slot.trainer_name, slot.starts_at) == ("Bruno", paris(2026, 6, 2, 9))
    assert first(paris(2026, 6, 2, 8), fanny).starts_at == paris(2026, 6, 2, 13)


def test_at_the_same_time_the_less_busy_trainer_comes_first() -> None:
    bruno = busy(BRUNO, (paris(2026, 6, 3, 9), paris(2026, 6, 3, 10)))
    fanny = busy(
        FANNY,
        (paris(2026, 6, 3, 10), paris(2026, 6, 3, 11)),
        (paris(2026, 6, 3, 14), paris(2026, 6, 3, 15)),
    )
    plan = domain.plan(CAL, [fanny, bruno], paris(2026, 6, 2, 8), NO_NOTICE)
    assert [(s.trainer_name, s.starts_at) for s in plan.window[:3]] == [
        ("Bruno", paris(2026, 6, 2, 9)),
        ("Fanny", paris(2026, 6, 2, 9)),
        ("Bruno", paris(2026, 6, 2, 9, 30)),
    ]


def test_without_trainers_there_is_neither_slot_nor_alternative() -> None:
    assert domain.plan(CAL, [], paris(2026, 6, 2, 8), NO_NOTICE) == domain.Plan([], [])


# --- slots chosen by a person --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "code"),
    [
        (paris(2026, 6, 2, 11, 30), "outside_opening_hours"),  # across lunch
        (paris(2026, 6, 6, 10), "outside_opening_hours"),  # Saturday
        (paris(2026, 7, 14, 10), "outside_opening_hours"),  # 14 July
        (paris(2026, 6, 2, 17, 30), "outside_opening_hours"),  # past closing
        (paris(2026, 6, 1, 10), "in_the_past"),
    ],
)
def test_a_chosen_slot_is_checked(start: datetime, code: str) -> None:
    with pytest.raises(DomainError) as refused:
        domain.check_chosen_slot(CAL, start, start + HOUR, paris(2026, 6, 2, 8))
    assert (refused.value.code, refused.value.field) == (code, "starts_at")


def test_a_chosen_slot_within_hours_passes() -> None:
    domain.check_chosen_slot(
        CAL, paris(2026, 6, 2, 14, 15), paris(2026, 6, 2, 15, 15), paris(2026, 6, 2, 8)
    )


# --- the laws, over arbitrary times and agendas ----------------------------------------------


instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
busy_spans = st.lists(
    st.tuples(st.integers(0, 4 * 24 * 4), st.integers(1, 16)), max_size=12
)  # (start in quarter hours from now, length in quarter hours)


@settings(max_examples=150, deadline=None)
@given(now=instants, spans=busy_spans, notice=st.integers(0, 120))
def test_every_window_slot_obeys_r7(
    now: datetime, spans: list[tuple[int, int]], notice: int
) -> None:
    quarter = timedelta(minutes=15)
    intervals = tuple((now + s * quarter, now + (s + n) * quarter) for s, n in spans)
    fanny = Agenda(FANNY.trainer_id, "Fanny", appointments=intervals)
    policy = SlotPolicy(notice=timedelta(minutes=notice))
    plan = domain.plan(CAL, [fanny], now, policy)
    today, next_day = domain.booking_days(CAL, now)
    assert [s.starts_at for s in plan.window] == sorted(s.starts_at for s in plan.window)
    for slot in plan.window:
        local = slot.starts_at.astimezone(PARIS)
        assert local.date() in (today, next_day)
        assert CAL.is_business_day(local.date())
        assert slot.starts_at >= now + policy.notice
        assert slot.ends_at - slot.starts_at == policy.duration
        assert fanny.is_free(slot.starts_at, slot.ends_at)
        assert local.minute in (0, 30) and local.second == 0
        # within one opening period: open all along, never across lunch or closing
        assert CAL.business_time_between(slot.starts_at, slot.ends_at) == policy.duration
    if not plan.window:
        assert all(s.starts_at.astimezone(PARIS).date() > next_day for s in plan.alternatives)
