"""The business calendar: when the centre is open, and arithmetic in open time (R3, R13).

The centre works Monday to Friday, 09:00-12:00 and 13:00-18:00 in Europe/Paris, French public
holidays excluded; all of it is configurable. The first-response commitment (R3) is counted in
this open time: `add_business_time(opened_at, 4 h)` is the due time, and
`fraction_point(opened_at, due, 0.75)` is when the warning goes out.

Open intervals are built per date from local wall-clock times, then compared and subtracted in
UTC, so 09:00 stays 09:00 across a DST change and a duration is always real elapsed time.
Every method accepts aware datetimes with any offset, refuses naive ones, and returns aware
datetimes in the calendar's time zone. Intervals are half-open: the centre is open at 09:00 and
closed at 12:00.

Pure module: no framework imports, usable from workflows, services and the UI alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = ["DEFAULT_CALENDAR", "BusinessCalendar"]

Period = tuple[time, time]
Interval = tuple[datetime, datetime]  # [start, end) in UTC

_ONE_DAY = timedelta(days=1)
_HOURS_RE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Opening hours of the centre (R3). Immutable and hashable, so it can key caches."""

    timezone: str = "Europe/Paris"
    # Opening periods of a working day, local wall-clock time, in order and not overlapping.
    periods: tuple[Period, ...] = ((time(9), time(12)), (time(13), time(18)))
    # Working weekdays, Monday = 0 ... Sunday = 6.
    workdays: frozenset[int] = frozenset(range(5))
    # Closures beyond the public holidays (bridges, Christmas Eve, ...).
    extra_closed: frozenset[date] = field(default_factory=frozenset)
    # Public holidays: a country (and subdivision, e.g. "57" for Moselle) known to `holidays`.
    country: str = "FR"
    subdivision: str | None = None

    def __post_init__(self) -> None:
        # Accept any iterables from callers, keep immutable hashable values.
        object.__setattr__(self, "periods", tuple((s, e) for s, e in self.periods))
        object.__setattr__(self, "workdays", frozenset(self.workdays))
        object.__setattr__(self, "extra_closed", frozenset(self.extra_closed))
        self._validate()

    def _validate(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        if not self.periods:
            raise ValueError("opening hours need at least one period")
        previous_end: time | None = None
        for start, end in self.periods:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError("opening periods are local wall-clock times, without tzinfo")
            if start >= end:
                raise ValueError(f"opening period {start:%H:%M}-{end:%H:%M} ends before it starts")
            if previous_end is not None and start < previous_end:
                raise ValueError(
                    f"opening period starting {start:%H:%M} overlaps or precedes the one before"
                )
            previous_end = end
        if not self.workdays:
            raise ValueError("at least one working weekday is needed")
        if not self.workdays <= frozenset(range(7)):
            raise ValueError("working weekdays are numbered 0 (Monday) to 6 (Sunday)")
        for day in self.extra_closed:
            if isinstance(day, datetime) or not isinstance(day, date):
                raise ValueError(f"closed days are dates, not {day!r}")
        try:
            _public_holidays(self.country, self.subdivision, 2000)
        except NotImplementedError as exc:
            raise ValueError(f"no public holidays known for {self.country!r}: {exc}") from exc

    @classmethod
    def parse(
        cls,
        hours: str,
        extra_closed: str = "",
        *,
        timezone: str = "Europe/Paris",
        country: str = "FR",
        subdivision: str | None = None,
    ) -> BusinessCalendar:
        """Read settings strings: `hours` like "09:00-12:00,13:00-18:00", `extra_closed` like
        "2026-12-24,2026-12-31" (empty for none). Raises ValueError naming the bad part."""
        periods = tuple(_parse_period(part) for part in _split(hours))
        if not periods:
            raise ValueError("opening hours are empty; expected e.g. '09:00-12:00,13:00-18:00'")
        closed = frozenset(_parse_date(part) for part in _split(extra_closed))
        return cls(
            timezone=timezone,
            periods=periods,
            extra_closed=closed,
            country=country,
            subdivision=subdivision,
        )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    # --- days -----------------------------------------------------------------------------

    def is_business_day(self, day: date | datetime) -> bool:
        """A working weekday that is neither a public holiday nor an extra closure (R3).
        A datetime is read as the local date of that instant."""
        day = self._as_local_date(day)
        return (
            day.weekday() in self.workdays
            and day not in self.extra_closed
            and day not in _public_holidays(self.country, self.subdivision, day.year)
        )

    def next_business_day(self, day: date | datetime) -> date:
        """The first business day strictly after `day` (R7: "the next business day")."""
        day = self._as_local_date(day) + _ONE_DAY
        while not self.is_business_day(day):
            day += _ONE_DAY
        return day

    def opening_of_day(self, day: date | datetime) -> datetime | None:
        """When the centre opens on `day`, or None when it stays closed."""
        intervals = _day_intervals(self, self._as_local_date(day))
        return intervals[0][0].astimezone(self.tz) if intervals else None

    def closing_of_day(self, day: date | datetime) -> datetime | None:
        """When the centre closes for the night on `day`, or None when it stays closed."""
        intervals = _day_intervals(self, self._as_local_date(day))
        return intervals[-1][1].astimezone(self.tz) if intervals else None

    # --- instants -------------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        instant = _utc(at)
        return any(s <= instant < e for s, e in _day_intervals(self, self._local_date(instant)))

    def next_opening(self, at: datetime) -> datetime:
        """`at` itself (in local time) if the centre is open then, else the next opening."""
        return self.add_business_time(at, timedelta(0))

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which `duration` of open time has elapsed since `start` (R3).

        A start while closed counts from the next opening. A duration that runs out exactly at
        a closing time gives that closing instant (12:00, not 13:00). A zero duration gives
        `next_opening(start)`.
        """
        if duration < timedelta(0):
            raise ValueError(f"duration must not be negative, got {duration}")
        instant = _utc(start)
        remaining = duration
        for open_at, close_at in self._intervals_from(instant):
            open_at = max(open_at, instant)
            available = close_at - open_at
            if remaining <= available:
                return (open_at + remaining).astimezone(self.tz)
            remaining -= available
        raise AssertionError("unreachable: the calendar has open days every year")

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Open time within [a, b); zero when b <= a."""
        begin, end = _utc(a), _utc(b)
        total = timedelta(0)
        if end <= begin:
            return total
        for open_at, close_at in self._intervals_from(begin):
            if open_at >= end:
                break
            total += min(close_at, end) - max(open_at, begin)
        return total

    def fraction_point(self, start: datetime, due: datetime, fraction: float) -> datetime:
        """The instant when `fraction` of the open time from `start` to `due` has elapsed:
        with 0.75, when the R3 warning goes out."""
        if fraction < 0:
            raise ValueError(f"fraction must not be negative, got {fraction}")
        return self.add_business_time(start, fraction * self.business_time_between(start, due))

    # --- internals ------------------------------------------------------------------------

    def _intervals_from(self, instant: datetime) -> Iterator[Interval]:
        """Open intervals ending after `instant`, in order, day by day, without end."""
        day = self._local_date(instant)
        while True:
            for interval in _day_intervals(self, day):
                if interval[1] > instant:
                    yield interval
            day += _ONE_DAY

    def _local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.tz).date()

    def _as_local_date(self, day: date | datetime) -> date:
        # A datetime is a date too; reading its naive .date() would ignore its offset.
        return self._local_date(_utc(day)) if isinstance(day, datetime) else day


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, got naive {at.isoformat()}")
    return at.astimezone(UTC)


@lru_cache(maxsize=8192)
def _day_intervals(calendar: BusinessCalendar, day: date) -> tuple[Interval, ...]:
    """The open intervals of `day` in UTC, built from local wall-clock times (DST-safe).

    Intervals touching each other are merged, so every end is a real closing; a wall-clock time
    skipped by a DST change cannot make intervals overlap."""
    if not calendar.is_business_day(day):
        return ()
    tz = calendar.tz
    merged: list[Interval] = []
    for start, end in calendar.periods:
        open_at = datetime.combine(day, start, tzinfo=tz).astimezone(UTC)
        close_at = datetime.combine(day, end, tzinfo=tz).astimezone(UTC)
        if merged and open_at <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], close_at))
        elif open_at < close_at:
            merged.append((open_at, close_at))
    return tuple(merged)


@lru_cache(maxsize=256)
def _public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """Public holidays of one year; cached, since building them is slow."""
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))


def _split(text: str) -> Iterable[str]:
    return (part.strip() for part in text.split(",") if part.strip())


def _parse_period(text: str) -> Period:
    match = _HOURS_RE.match(text)
    if match is None:
        raise ValueError(f"opening period {text!r} is not of the form HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    try:
        return time(h1, m1), time(h2, m2)
    except ValueError as exc:
        raise ValueError(f"opening period {text!r} has an impossible time: {exc}") from exc


def _parse_date(text: str) -> date:
    if _DATE_RE.match(text) is None:
        raise ValueError(f"closed day {text!r} is not of the form YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"closed day {text!r} is not a valid date: {exc}") from exc


DEFAULT_CALENDAR = BusinessCalendar()
