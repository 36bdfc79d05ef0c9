"""Training rules, pure: when trainers are free and which slot a dossier gets (R7).

R7: an advanced-usage dossier gets an appointment with a trainer who teaches its software,
the same day or the next business day. Trainers work the centre's opening hours (the business
calendar: Monday to Friday, French public holidays excluded, Europe/Paris) minus their
absences and their other appointments. An appointment never straddles a closing (lunch, the
evening): it lies within one opening period. Start times fall on a grid (every 30 minutes by
default) counted from the opening of each period, in local wall-clock time, so DST changes
never shift them.

No framework imports: the booking use case reads the agendas, this module ranks the slots, and
PostgreSQL's exclusion constraint has the last word under concurrency.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from assistance.business_time import BusinessCalendar
from assistance.errors import DomainError

Interval = tuple[datetime, datetime]  # [start, end), aware

_ONE_DAY = timedelta(days=1)
BOOKING_HORIZON = timedelta(days=366)  # how far ahead a person may place an appointment


@dataclass(frozen=True)
class SlotPolicy:
    """How slots are cut (from TrainingSettings)."""

    duration: timedelta = timedelta(hours=1)
    step: timedelta = timedelta(minutes=30)
    notice: timedelta = timedelta(0)
    alternatives: int = 3
    alternatives_days: int = 10

    def __post_init__(self) -> None:
        if self.duration <= timedelta(0) or self.step <= timedelta(0):
            raise ValueError("duration and step must be positive")
        if self.notice < timedelta(0):
            raise ValueError("notice must not be negative")


@dataclass(frozen=True)
class Agenda:
    """One trainer's commitments over the searched days."""

    trainer_id: uuid.UUID
    name: str
    appointments: tuple[Interval, ...] = ()
    absences: tuple[Interval, ...] = ()

    def is_free(self, start: datetime, end: datetime) -> bool:
        return not any(s < end and start < e for s, e in (*self.appointments, *self.absences))

    def load(self, days: Iterable[date], calendar: BusinessCalendar) -> int:
        """Appointments on these days: the less busy trainer gets the slot first."""
        wanted = set(days)
        return sum(1 for s, _ in self.appointments if s.astimezone(calendar.tz).date() in wanted)


@dataclass(frozen=True)
class Slot:
    trainer_id: uuid.UUID
    trainer_name: str
    starts_at: datetime
    ends_at: datetime

    def as_json(self) -> dict[str, str]:
        return {
            "trainer_id": str(self.trainer_id),
            "trainer_name": self.trainer_name,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
        }


@dataclass(frozen=True)
class Plan:
    """The slots of the R7 window in order of preference, and what to offer beyond it."""

    window: list[Slot]
    alternatives: list[Slot] = field(default_factory=list)


def booking_days(calendar: BusinessCalendar, now: datetime) -> tuple[date, date]:
    """R7: today (which may be closed) and the next business day, local dates."""
    today = now.astimezone(calendar.tz).date()
    return today, calendar.next_business_day(today)


def open_periods(calendar: BusinessCalendar, day: date) -> list[Interval]:
    """The opening periods of `day` in local time; none on a closed day (R3 calendar).

    Built from wall-clock times per date, so 09:00 stays 09:00 across a DST change."""
    if not calendar.is_business_day(day):
        return []
    tz = calendar.tz
    periods: list[Interval] = []
    for start, end in calendar.periods:
        open_at = datetime.combine(day, start, tzinfo=tz)
        close_at = datetime.combine(day, end, tzinfo=tz)
        if periods and open_at <= periods[-1][1]:
            periods[-1] = (periods[-1][0], max(periods[-1][1], close_at))
        else:
            periods.append((open_at, close_at))
    return periods


def start_times(
    calendar: BusinessCalendar, day: date, policy: SlotPolicy, earliest: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """Every (start, end) on the grid of `day` that starts at or after `earliest` and ends
    within the same opening period (never across lunch or the evening closing)."""
    for open_at, close_at in open_periods(calendar, day):
        first = 0
        if earliest > open_at:
            first = math.ceil((earliest - open_at) / policy.step)
        start = open_at + first * policy.step
        while start + policy.duration <= close_at:
            yield start.astimezone(calendar.tz), (start + policy.duration).astimezone(calendar.tz)
            start += policy.step


def slots_on(
    calendar: BusinessCalendar,
    days: Iterable[date],
    agendas: Iterable[Agenda],
    policy: SlotPolicy,
    earliest: datetime,
) -> list[Slot]:
    """Free slots on these days, earliest first; at one start time, the trainer with the
    fewest appointments on these days first, then by name."""
    days = list(days)
    ranked = sorted(agendas, key=lambda a: (a.load(days, calendar), a.name, str(a.trainer_id)))
    found: list[Slot] = []
    for day in days:
        for start, end in start_times(calendar, day, policy, earliest):
            found.extend(
                Slot(a.trainer_id, a.name, start, end) for a in ranked if a.is_free(start, end)
            )
    return found


def plan(
    calendar: BusinessCalendar, agendas: Iterable[Agenda], now: datetime, policy: SlotPolicy
) -> Plan:
    """R7: every free slot today or the next business day, best first; when there is none,
    the first alternatives after that window (one per start time), for the training lead."""
    agendas = list(agendas)
    earliest = now + policy.notice
    today, next_day = booking_days(calendar, now)
    window = slots_on(calendar, [today, next_day], agendas, policy, earliest)
    if window:
        return Plan(window)
    return Plan([], alternatives(calendar, agendas, next_day, policy, earliest))


def alternatives(
    calendar: BusinessCalendar,
    agendas: list[Agenda],
    after: date,
    policy: SlotPolicy,
    earliest: datetime,
) -> list[Slot]:
    """The first free slots on the business days after `after`, one per start time."""
    chosen: list[Slot] = []
    day = after
    for _ in range(policy.alternatives_days):
        day = calendar.next_business_day(day)
        for slot in slots_on(calendar, [day], agendas, policy, earliest):
            if chosen and chosen[-1].starts_at == slot.starts_at:
                continue
            chosen.append(slot)
            if len(chosen) == policy.alternatives:
                return chosen
    return chosen


def window_end(calendar: BusinessCalendar, now: datetime, policy: SlotPolicy) -> datetime:
    """Until when agendas matter for a booking made `now`: the end of the alternatives."""
    day = booking_days(calendar, now)[1]
    for _ in range(policy.alternatives_days):
        day = calendar.next_business_day(day)
    return datetime.combine(day + _ONE_DAY, datetime.min.time(), tzinfo=calendar.tz)


def check_chosen_slot(
    calendar: BusinessCalendar, starts_at: datetime, ends_at: datetime, now: datetime
) -> None:
    """A slot chosen by a person (rebooking, rescheduling) lies in the future, within one
    opening period of a business day. Raises DomainError naming `starts_at` otherwise."""
    if starts_at.tzinfo is None:
        raise DomainError(
            "naive_time", "Indiquez l'heure avec son décalage (ISO 8601).", "starts_at"
        )
    if starts_at < now:
        raise DomainError("in_the_past", "Ce créneau est déjà passé.", "starts_at")
    if starts_at > now + BOOKING_HORIZON:
        raise DomainError(
            "too_far", "Un rendez-vous se prend au plus un an à l'avance.", "starts_at"
        )
    day = starts_at.astimezone(calendar.tz).date()
    for open_at, close_at in open_periods(calendar, day):
        if open_at <= starts_at and ends_at <= close_at:
            return
    raise DomainError(
        "outside_opening_hours",
        "Le rendez-vous doit tenir dans les heures d'ouverture d'un jour ouvré "
        "(hors pause de midi, week-end et jours fériés).",
        "starts_at",
    )
