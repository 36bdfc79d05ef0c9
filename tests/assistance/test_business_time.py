"""The business calendar (R3): opening hours, French public holidays, DST-safe arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistance.business_time import DEFAULT_CALENDAR, BusinessCalendar

PARIS = ZoneInfo("Europe/Paris")
FOUR_HOURS = timedelta(hours=4)
CAL = DEFAULT_CALENDAR


def paris(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=PARIS)


# --- R3 first-response due times --------------------------------------------------------------


@pytest.mark.parametrize(
    ("deposit", "due"),
    [
        # Friday 17:30: 0.5 h Friday, 3 h Monday morning, 0.5 h after lunch.
        (paris(2026, 3, 6, 17, 30), "2026-03-09T13:30:00+01:00"),
        # Saturday: counted from Monday 09:00; 3 h morning + 1 h afternoon.
        (paris(2026, 3, 7, 10), "2026-03-09T14:00:00+01:00"),
        # Sunday night, just before the week opens.
        (paris(2026, 3, 8, 23, 59), "2026-03-09T14:00:00+01:00"),
        # Tuesday 11:00: 1 h before lunch, 3 h after.
        (paris(2026, 3, 10, 11), "2026-03-10T16:00:00+01:00"),
        # During lunch: counted from 13:00.
        (paris(2026, 3, 10, 12, 15), "2026-03-10T17:00:00+01:00"),
        # Tuesday 16:00: 2 h Tuesday, 2 h Wednesday morning.
        (paris(2026, 3, 10, 16), "2026-03-11T11:00:00+01:00"),
        # Evening before Ascension (Thursday 14 May 2026): counted from Friday 09:00.
        (paris(2026, 5, 13, 20), "2026-05-15T14:00:00+02:00"),
        # Friday before Easter Monday (6 April 2026): 1 h Friday, 3 h Tuesday morning, ending
        # exactly at the lunch closing.
        (paris(2026, 4, 3, 17), "2026-04-07T12:00:00+02:00"),
        # Friday before Whit Monday (25 May 2026): 2 h Friday, 2 h Tuesday.
        (paris(2026, 5, 22, 16), "2026-05-26T11:00:00+02:00"),
        # Christmas Eve is open by default; Christmas Day (Friday) is not.
        (paris(2026, 12, 24, 16), "2026-12-28T11:00:00+01:00"),
    ],
)
def test_first_response_due(deposit: datetime, due: str) -> None:
    result = CAL.add_business_time(deposit, FOUR_HOURS)
    assert result.isoformat() == due
    assert result.tzinfo == PARIS
    assert CAL.business_time_between(deposit, result) == FOUR_HOURS


@pytest.mark.parametrize(
    ("holiday", "next_day"),
    [
        (date(2026, 1, 1), date(2026, 1, 2)),  # New Year's Day, Thursday
        (date(2026, 4, 6), date(2026, 4, 7)),  # Easter Monday
        (date(2026, 5, 1), date(2026, 5, 4)),  # Labour Day, Friday
        (date(2026, 5, 8), date(2026, 5, 11)),  # Victory in Europe Day, Friday
        (date(2026, 5, 14), date(2026, 5, 15)),  # Ascension, Thursday
        (date(2026, 5, 25), date(2026, 5, 26)),  # Whit Monday
        (date(2026, 7, 14), date(2026, 7, 15)),  # Bastille Day, Tuesday
        (date(2025, 8, 15), date(2025, 8, 18)),  # Assumption, Friday
        (date(2027, 11, 1), date(2027, 11, 2)),  # All Saints' Day, Monday
        (date(2026, 11, 11), date(2026, 11, 12)),  # Armistice Day, Wednesday
        (date(2026, 12, 25), date(2026, 12, 28)),  # Christmas, Friday
    ],
)
def test_french_public_holidays_are_closed(holiday: date, next_day: date) -> None:
    assert holiday.weekday() < 5  # a weekday, so only the holiday closes it
    assert CAL.is_business_day(holiday) is False
    assert CAL.opening_of_day(holiday) is None
    assert CAL.closing_of_day(holiday) is None
    assert CAL.is_open(datetime.combine(holiday, time(10), tzinfo=PARIS)) is False
    assert CAL.next_business_day(holiday) == next_day
    deposit = datetime.combine(holiday, time(10), tzinfo=PARIS)
    assert CAL.add_business_time(deposit, timedelta(hours=1)) == datetime.combine(
        next_day, time(10), tzinfo=PARIS
    )


def test_subdivision_adds_its_own_holidays() -> None:
    moselle = BusinessCalendar(subdivision="57")  # Good Friday and 26 December
    good_friday = date(2026, 4, 3)
    assert CAL.is_business_day(good_friday) is True
    assert moselle.is_business_day(good_friday) is False
    assert moselle.add_business_time(paris(2026, 4, 2, 17), FOUR_HOURS).isoformat() == (
        "2026-04-07T12:00:00+02:00"
    )


# --- Daylight saving time ---------------------------------------------------------------------


def test_spring_forward_keeps_wall_clock_hours() -> None:
    deposit = paris(2026, 3, 27, 16)  # Friday, +01:00; clocks go forward Sunday 29 March
    due = CAL.add_business_time(deposit, FOUR_HOURS)
    assert due.isoformat() == "2026-03-30T11:00:00+02:00"
    assert due.astimezone(UTC) == datetime(2026, 3, 30, 9, tzinfo=UTC)
    assert deposit.utcoffset() == timedelta(hours=1)
    assert due.utcoffset() == timedelta(hours=2)
    assert CAL.business_time_between(deposit, due) == FOUR_HOURS
    opening = CAL.opening_of_day(date(2026, 3, 30))
    assert opening is not None
    assert opening.isoformat() == "2026-03-30T09:00:00+02:00"


def test_fall_back_keeps_wall_clock_hours() -> None:
    deposit = paris(2026, 10, 23, 16)  # Friday, +02:00; clocks go back Sunday 25 October
    due = CAL.add_business_time(deposit, FOUR_HOURS)
    assert due.isoformat() == "2026-10-26T11:00:00+01:00"
    assert due.astimezone(UTC) == datetime(2026, 10, 26, 10, tzinfo=UTC)
    assert deposit.utcoffset() == timedelta(hours=2)
    assert due.utcoffset() == timedelta(hours=1)
    closing = CAL.closing_of_day(date(2026, 10, 26))
    assert closing is not None
    assert closing.isoformat() == "2026-10-26T18:00:00+01:00"


def test_durations_are_real_elapsed_time_across_a_dst_night() -> None:
    always = BusinessCalendar(periods=((time(0), time(23, 59)),), workdays=frozenset(range(7)))
    for day, open_time in [
        (date(2026, 3, 28), timedelta(hours=23, minutes=59)),
        (date(2026, 3, 29), timedelta(hours=22, minutes=59)),  # one hour skipped
        (date(2026, 10, 25), timedelta(hours=24, minutes=59)),  # one hour repeated
    ]:
        opening, closing = always.opening_of_day(day), always.closing_of_day(day)
        assert opening is not None and closing is not None
        assert always.business_time_between(opening, closing) == open_time
        assert always.add_business_time(opening, open_time) == closing


# --- Instants given in any offset -------------------------------------------------------------


@pytest.mark.parametrize(
    "deposit",
    [
        paris(2026, 3, 6, 17, 30),
        datetime(2026, 3, 6, 16, 30, tzinfo=UTC),
        datetime(2026, 3, 6, 11, 30, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 3, 7, 1, 30, tzinfo=ZoneInfo("Asia/Tokyo")),
    ],
)
def test_any_offset_gives_the_same_instant_in_paris_time(deposit: datetime) -> None:
    due = CAL.add_business_time(deposit, FOUR_HOURS)
    assert due.isoformat() == "2026-03-09T13:30:00+01:00"
    assert due.tzinfo == PARIS
    assert CAL.next_opening(deposit).isoformat() == "2026-03-06T17:30:00+01:00"


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 3, 10, 10)
    aware = paris(2026, 3, 10, 10)
    for call in [
        lambda: CAL.is_open(naive),
        lambda: CAL.next_opening(naive),
        lambda: CAL.add_business_time(naive, FOUR_HOURS),
        lambda: CAL.business_time_between(naive, aware),
        lambda: CAL.business_time_between(aware, naive),
        lambda: CAL.fraction_point(naive, aware, 0.75),
        lambda: CAL.is_business_day(naive),
    ]:
        with pytest.raises(ValueError, match="timezone-aware"):
            call()


# --- Opening, closing and zero durations ------------------------------------------------------


def test_open_intervals_are_half_open() -> None:
    assert CAL.is_open(paris(2026, 3, 10, 9)) is True
    assert CAL.is_open(paris(2026, 3, 10, 11, 59)) is True
    assert CAL.is_open(paris(2026, 3, 10, 12)) is False
    assert CAL.is_open(paris(2026, 3, 10, 12, 59)) is False
    assert CAL.is_open(paris(2026, 3, 10, 13)) is True
    assert CAL.is_open(paris(2026, 3, 10, 18)) is False
    assert CAL.is_open(paris(2026, 3, 10, 8, 59)) is False
    assert CAL.is_open(paris(2026, 3, 7, 10)) is False  # Saturday


def test_a_duration_ending_at_a_closing_gives_the_closing() -> None:
    assert CAL.add_business_time(paris(2026, 3, 10, 9), timedelta(hours=3)).isoformat() == (
        "2026-03-10T12:00:00+01:00"
    )
    assert CAL.add_business_time(paris(2026, 3, 10, 9), timedelta(hours=8)).isoformat() == (
        "2026-03-10T18:00:00+01:00"
    )
    assert CAL.add_business_time(paris(2026, 3, 10, 9), timedelta(hours=3, seconds=1)) == (
        paris(2026, 3, 10, 13) + timedelta(seconds=1)
    )


def test_zero_duration_is_the_next_opening() -> None:
    assert CAL.add_business_time(paris(2026, 3, 10, 10), timedelta(0)) == paris(2026, 3, 10, 10)
    assert CAL.add_business_time(paris(2026, 3, 10, 12), timedelta(0)) == paris(2026, 3, 10, 13)
    assert CAL.add_business_time(paris(2026, 3, 7, 10), timedelta(0)) == paris(2026, 3, 9, 9)
    assert CAL.next_opening(paris(2026, 3, 10, 18)) == paris(2026, 3, 11, 9)
    assert CAL.next_opening(paris(2026, 5, 13, 18)) == paris(2026, 5, 15, 9)


def test_negative_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        CAL.add_business_time(paris(2026, 3, 10, 10), timedelta(seconds=-1))


def test_long_durations_run_day_by_day() -> None:
    # 20 working days of 8 h from Monday 5 January 2026: the last one is Friday 30 January.
    due = CAL.add_business_time(paris(2026, 1, 5, 9), timedelta(hours=8 * 20))
    assert due.isoformat() == "2026-01-30T18:00:00+01:00"
    # A year of open time: 261 weekdays in 2026, 9 of them public holidays.
    year = CAL.business_time_between(paris(2026, 1, 1), paris(2027, 1, 1))
    assert year == timedelta(hours=8 * 252)


def test_business_time_between() -> None:
    assert CAL.business_time_between(paris(2026, 3, 9), paris(2026, 3, 16)) == timedelta(hours=40)
    # The week of Ascension has four business days.
    assert CAL.business_time_between(paris(2026, 5, 11), paris(2026, 5, 18)) == timedelta(hours=32)
    assert CAL.business_time_between(paris(2026, 3, 10, 11), paris(2026, 3, 10, 14)) == (
        timedelta(hours=2)
    )
    assert CAL.business_time_between(paris(2026, 3, 10, 14), paris(2026, 3, 10, 11)) == (
        timedelta(0)
    )


def test_fraction_point_gives_the_warning_time() -> None:
    start = paris(2026, 3, 10, 11)
    due = CAL.add_business_time(start, FOUR_HOURS)
    assert CAL.fraction_point(start, due, 0.75) == paris(2026, 3, 10, 15)
    # Over a weekend: 3 h of the 4 h are 0.5 h on Friday and 2.5 h on Monday.
    start = paris(2026, 3, 6, 17, 30)
    due = CAL.add_business_time(start, FOUR_HOURS)
    assert CAL.fraction_point(start, due, 0.75) == paris(2026, 3, 9, 11, 30)
    # A warning that falls due exactly at a closing is given at that closing.
    assert CAL.fraction_point(start, due, 0.875) == paris(2026, 3, 9, 12)
    assert CAL.fraction_point(start, due, 1.0) == due
    with pytest.raises(ValueError, match="negative"):
        CAL.fraction_point(start, due, -0.1)


def test_next_business_day() -> None:
    assert CAL.next_business_day(date(2026, 3, 6)) == date(2026, 3, 9)  # Friday -> Monday
    assert CAL.next_business_day(date(2026, 3, 10)) == date(2026, 3, 11)
    assert CAL.next_business_day(date(2026, 5, 7)) == date(2026, 5, 11)  # 8 May is closed
    # A datetime is read as its local date: 23:30 UTC on Monday is Tuesday in Paris.
    assert CAL.next_business_day(datetime(2026, 3, 9, 23, 30, tzinfo=UTC)) == date(2026, 3, 11)


# --- Configuration ----------------------------------------------------------------------------


def test_extra_closed_days() -> None:
    cal = BusinessCalendar.parse("09:00-12:00,13:00-18:00", "2026-12-24, 2026-12-31")
    assert cal.extra_closed == frozenset({date(2026, 12, 24), date(2026, 12, 31)})
    assert cal.is_business_day(date(2026, 12, 24)) is False
    # 2 h Wednesday, Thursday 24 closed, Friday 25 Christmas, 2 h Monday.
    assert cal.add_business_time(paris(2026, 12, 23, 16), FOUR_HOURS).isoformat() == (
        "2026-12-28T11:00:00+01:00"
    )
    assert cal.next_business_day(date(2026, 12, 30)) == date(2027, 1, 4)


def test_custom_hours() -> None:
    cal = BusinessCalendar.parse("08:30-12:30,14:00-17:00")
    assert cal.periods == ((time(8, 30), time(12, 30)), (time(14), time(17)))
    assert cal.is_open(paris(2026, 3, 10, 13, 30)) is False
    assert cal.add_business_time(paris(2026, 3, 10, 11, 30), FOUR_HOURS).isoformat() == (
        "2026-03-10T17:00:00+01:00"
    )
    assert cal.add_business_time(paris(2026, 3, 10, 17), FOUR_HOURS).isoformat() == (
        "2026-03-11T12:30:00+01:00"
    )


def test_default_parse_is_the_default_calendar() -> None:
    parsed = BusinessCalendar.parse("09:00-12:00,13:00-18:00", "", timezone="Europe/Paris")
    assert parsed == DEFAULT_CALENDAR
    assert hash(parsed) == hash(DEFAULT_CALENDAR)


def test_touching_periods_merge_into_one() -> None:
    cal = BusinessCalendar.parse("09:00-12:00,12:00-18:00")
    assert cal.add_business_time(paris(2026, 3, 10, 11), timedelta(hours=1)) == paris(
        2026, 3, 10, 12
    )
    assert cal.is_open(paris(2026, 3, 10, 12)) is True
    assert cal.business_time_between(paris(2026, 3, 10), paris(2026, 3, 11)) == timedelta(hours=9)


@pytest.mark.parametrize(
    ("hours", "closed", "message"),
    [
        ("", "", "opening hours are empty"),
        ("9h-12h", "", "not of the form HH:MM-HH:MM"),
        ("09:00-12:00;13:00-18:00", "", "not of the form HH:MM-HH:MM"),
        ("25:00-26:00", "", "impossible time"),
        ("12:00-09:00", "", "ends before it starts"),
        ("09:00-12:00,11:00-13:00", "", "overlaps"),
        ("09:00-12:00", "24/12/2026", "not of the form YYYY-MM-DD"),
        ("09:00-12:00", "2026-02-30", "not a valid date"),
    ],
)
def test_parse_refuses_bad_settings(hours: str, closed: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar.parse(hours, closed)


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        BusinessCalendar(timezone="Europe/Atlantis")
    with pytest.raises(ValueError, match="no public holidays known"):
        BusinessCalendar(country="XX")
    with pytest.raises(ValueError, match="working weekday"):
        BusinessCalendar(workdays=frozenset())
    with pytest.raises(ValueError, match="0 \\(Monday\\) to 6"):
        BusinessCalendar(workdays=frozenset({7}))
    with pytest.raises(ValueError, match="at least one period"):
        BusinessCalendar(periods=())


# --- Laws -------------------------------------------------------------------------------------

CALENDARS = [
    DEFAULT_CALENDAR,
    BusinessCalendar.parse("08:30-12:30,14:00-17:00", "2026-12-24,2027-12-24,2028-05-26"),
    # Open every day, with periods that cross the DST night.
    BusinessCalendar(
        periods=((time(0, 30), time(2, 30)), (time(2, 45), time(23))),
        workdays=frozenset(range(7)),
    ),
]

calendars = st.sampled_from(CALENDARS)
instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))
durations = st.integers(min_value=0, max_value=200 * 60).map(lambda m: timedelta(minutes=m))
positive_durations = st.integers(min_value=1, max_value=200 * 3600).map(
    lambda s: timedelta(seconds=s)
)
offsets = st.sampled_from(
    [UTC, PARIS, timezone(timedelta(hours=-5)), ZoneInfo("Asia/Tokyo"), ZoneInfo("US/Pacific")]
)


def utc(d: datetime) -> datetime:
    # Datetimes sharing a tzinfo compare by wall clock; compare instants instead.
    return d.astimezone(UTC)


@settings(deadline=None)
@given(calendars, instants, instants, durations)
def test_monotonic_in_start(cal: BusinessCalendar, a: datetime, b: datetime, d: timedelta) -> None:
    a, b = sorted([a, b])
    assert utc(cal.add_business_time(a, d)) <= utc(cal.add_business_time(b, d))


@settings(deadline=None)
@given(calendars, instants, durations, durations)
def test_monotonic_in_duration(
    cal: BusinessCalendar, a: datetime, d1: timedelta, d2: timedelta
) -> None:
    d1, d2 = sorted([d1, d2])
    assert utc(cal.add_business_time(a, d1)) <= utc(cal.add_business_time(a, d2))


@settings(deadline=None)
@given(calendars, instants, durations, positive_durations)
def test_additive(cal: BusinessCalendar, a: datetime, d1: timedelta, d2: timedelta) -> None:
    step = cal.add_business_time(a, d1)
    assert utc(cal.add_business_time(step, d2)) == utc(cal.add_business_time(a, d1 + d2))
    # A zero step moves a closing instant on to the next opening, nothing else.
    assert utc(cal.add_business_time(step, timedelta(0))) == utc(cal.next_opening(step))


@settings(deadline=None)
@given(calendars, instants, positive_durations)
def test_round_trip_and_lands_open_or_on_a_closing(
    cal: BusinessCalendar, a: datetime, d: timedelta
) -> None:
    result = cal.add_business_time(a, d)
    assert cal.business_time_between(a, result) == d
    assert utc(result) > utc(a)
    # Open just before: the result lies inside an open interval or exactly at its closing.
    assert cal.is_open(result - timedelta(microseconds=1))


@settings(deadline=None)
@given(calendars, instants)
def test_next_opening_is_open_and_skips_only_closed_time(
    cal: BusinessCalendar, a: datetime
) -> None:
    opening = cal.next_opening(a)
    assert cal.is_open(opening)
    assert utc(opening) >= utc(a)
    assert cal.business_time_between(a, opening) == timedelta(0)
    assert (utc(opening) == utc(a)) == cal.is_open(a)


@settings(deadline=None)
@given(calendars, instants, instants, instants)
def test_between_is_additive(cal: BusinessCalendar, a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted([a, b, c])
    between = cal.business_time_between
    assert between(a, b) + between(b, c) == between(a, c)
    assert between(c, a) == timedelta(0)


@settings(deadline=None)
@given(calendars, instants, durations, offsets)
def test_offset_does_not_matter(
    cal: BusinessCalendar, a: datetime, d: timedelta, tz: timezone | ZoneInfo
) -> None:
    expected = cal.add_business_time(a, d)
    result = cal.add_business_time(a.astimezone(tz), d)
    assert utc(result) == utc(expected)
    assert result.tzinfo == ZoneInfo(cal.timezone)
    assert cal.is_open(a.astimezone(tz)) == cal.is_open(a)
