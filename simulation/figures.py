"""The report's figures, per week and per kind, from what the run recorded.

What the run records: for each dossier, what its events, mails and notices said
(`DossierFacts`, filled by the in-memory recorder exactly as the read model is, from the
`dossier.dossier.*` events); what the simulated services did (trainings booked, fixes
released, evolutions decided); and the follow-through checks (`Sample`: at each business day's
closing, every open dossier's workflow history read for a live timer, and its owner).

The four commitments, as figures:
- engagement 1 (R3): first responses within the commitment, among those that fell due during
  the run; every late one must have been warned at 75 % before its due time, detected as a
  breach at its due time, and escalated to the administrators;
- engagement 2 (R2): no open dossier without a technician once taken from the queue, none
  without a live timer, none still in the queue at the end past its first response's due
  time; reminders and escalations counted;
- engagement 3 (R8, R9): every customer linked to a released fix told the version, every
  evolution decision told to its requester;
- engagement 4 (R7): trainings booked the same or the next business day;
and the time to closure (business hours, median and 9th decile).

Pure module.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from assistance.business_time import BusinessCalendar
from services.dossier.domain import KIND_LABELS, KINDS
from services.training.domain import booking_days

# A timer fires at its instant plus the few seconds the step takes in real time.
TOLERANCE = timedelta(minutes=2)
UNCLASSIFIED = "non classé"


@dataclass
class DossierFacts:
    """One dossier as its recorded events, mails and notices tell it."""

    dossier_id: str
    reference: str
    channel: str
    received_at: datetime
    due: datetime  # R3
    warning_at: datetime  # R3: when 75 % of the delay has elapsed
    kind: str | None = None
    status: str = "new"
    technician_id: str | None = None
    taken_at: datetime | None = None
    first_responded_at: datetime | None = None
    closed_at: datetime | None = None
    warned_at: datetime | None = None
    breached_at: datetime | None = None
    breach_escalated_at: datetime | None = None  # the administrators told of the breach
    reminders: int = 0  # R2
    escalations: int = 0  # R2
    mails: list[tuple[str, datetime]] = field(default_factory=list)  # (template, when)

    def mailed(self, template: str, since: datetime | None = None) -> bool:
        return any(t == template and (since is None or at >= since) for t, at in self.mails)


@dataclass(frozen=True)
class Booking:
    """R7: a training asked for a dossier at `asked_at`, booked for `starts_at`."""

    dossier_id: str
    asked_at: datetime
    starts_at: datetime | None  # None: no trainer could be found
    by_hand: bool = False  # booked by the training lead after "no slot in the window"


@dataclass(frozen=True)
class FixReleased:
    """R8: a bug's fix released in `version`; every linked dossier must be told."""

    bug_id: str
    software: str
    version: str
    released_at: datetime
    dossier_ids: tuple[str, ...]


@dataclass(frozen=True)
class Decided:
    """R9: an evolution request decided; its requester must be told."""

    evolution_id: str
    decision: str  # accepted | rejected
    decided_at: datetime
    dossier_ids: tuple[str, ...]


@dataclass(frozen=True)
class Sample:
    """R2 at one instant: the open dossiers, and those without a technician (once out of the
    queue) or without a live timer in their workflow."""

    at: datetime
    open: int
    queued: int
    without_owner: tuple[str, ...] = ()
    without_timer: tuple[str, ...] = ()


@dataclass
class Figures:
    """One row of the report: a week, a kind, a day or the whole run."""

    label: str
    dossiers: int = 0
    responses_due: int = 0  # first responses due within the run, or given
    in_time: int = 0
    late: int = 0  # breaches of R3
    warned: int = 0  # … warned at 75 % before the due time
    detected: int = 0  # … recorded as breached at the due time
    escalated: int = 0  # … the administrators told
    false_alarms: int = 0  # warned or breached although answered in time (must be 0)
    reminders: int = 0
    escalations: int = 0
    without_owner: int = 0  # distinct dossiers found so in a check (must be 0)
    without_timer: int = 0  # idem (must be 0)
    never_taken: int = 0  # still in the queue at the end, past its due time (must be 0)
    open_at_end: int = 0
    trainings: int = 0
    trainings_in_window: int = 0
    fixes_due: int = 0
    fixes_told: int = 0
    decisions: int = 0
    decisions_told: int = 0
    closed: int = 0
    closure_hours: list[float] = field(default_factory=list)

    @property
    def in_time_pct(self) -> float | None:
        return pct(self.in_time, self.responses_due)

    @property
    def trainings_pct(self) -> float | None:
        return pct(self.trainings_in_window, self.trainings)

    @property
    def breaches_handled(self) -> bool:
        """Every breach warned, detected and escalated, and no false alarm."""
        late = self.late
        return (self.warned, self.detected, self.escalated, self.false_alarms) == (
            late,
            late,
            late,
            0,
        )

    @property
    def forgotten(self) -> int:
        return self.without_owner + self.without_timer + self.never_taken

    @property
    def closure_median(self) -> float | None:
        return statistics.median(self.closure_hours) if self.closure_hours else None

    @property
    def closure_p90(self) -> float | None:
        if not self.closure_hours:
            return None
        if len(self.closure_hours) == 1:
            return self.closure_hours[0]
        return statistics.quantiles(self.closure_hours, n=10, method="inclusive")[-1]


@dataclass
class Report:
    weeks: list[Figures]
    kinds: list[Figures]
    days: list[Figures]
    total: Figures
    samples: int
    arrivals_by_hour: list[int]  # per hour of the week, Monday 00:00 first (168)
    day_kinds: dict[tuple[str, str | None], int]  # (day, kind): dossiers


def pct(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def week_of(at: datetime, calendar: BusinessCalendar) -> date:
    """The Monday of the local week of `at`."""
    day = at.astimezone(calendar.tz).date()
    return day - timedelta(days=day.weekday())


def kind_label(kind: str | None) -> str:
    return KIND_LABELS.get(kind or "", UNCLASSIFIED)


def compute(
    dossiers: Iterable[DossierFacts],
    *,
    calendar: BusinessCalendar,
    end: datetime,
    bookings: Iterable[Booking] = (),
    releases: Iterable[FixReleased] = (),
    decisions: Iterable[Decided] = (),
    samples: Iterable[Sample] = (),
) -> Report:
    """Every figure of the report; `end` is when the simulated time ended."""
    facts = sorted(dossiers, key=lambda d: (d.received_at, d.reference))
    by_id = {d.dossier_id: d for d in facts}
    rows: dict[str, Figures] = {}
    samples = list(samples)

    def groups(d: DossierFacts) -> list[Figures]:
        week = week_of(d.received_at, calendar)
        day = d.received_at.astimezone(calendar.tz).date()
        keys = [
            ("total", "Total"),
            (f"w{week.isoformat()}", week_label(week)),
            (f"k{d.kind or ''}", kind_label(d.kind)),
            (f"d{day.isoformat()}", day.isoformat()),
        ]
        return [rows.setdefault(k, Figures(label)) for k, label in keys]

    for d in facts:
        for row in groups(d):
            _dossier(row, d, calendar, end)
    _each(bookings, by_id, groups, lambda row, b: _booking(row, b, calendar))
    for fix in releases:
        for dossier_id in fix.dossier_ids:
            linked = by_id.get(dossier_id)
            if linked is not None:
                for row in groups(linked):
                    row.fixes_due += 1
                    row.fixes_told += linked.mailed("fix_released", fix.released_at - TOLERANCE)
    for decided in decisions:
        for dossier_id in decided.dossier_ids:
            requester = by_id.get(dossier_id)
            if requester is not None:
                for row in groups(requester):
                    row.decisions += 1
                    row.decisions_told += requester.mailed(
                        f"evolution_{decided.decision}", decided.decided_at - TOLERANCE
                    )
    for attribute, ids in (
        ("without_owner", {i for s in samples for i in s.without_owner}),
        ("without_timer", {i for s in samples for i in s.without_timer}),
    ):
        for dossier_id in ids:
            if dossier_id in by_id:
                for row in groups(by_id[dossier_id]):
                    setattr(row, attribute, getattr(row, attribute) + 1)

    def ordered(prefix: str, order: Callable[[str], Any] = str) -> list[Figures]:
        keys = sorted((k for k in rows if k.startswith(prefix)), key=lambda k: order(k[1:]))
        return [rows[k] for k in keys]

    kind_order = {k: i for i, k in enumerate(KINDS)}
    hours = [0] * 168
    day_kinds: dict[tuple[str, str | None], int] = defaultdict(int)
    for d in facts:
        local = d.received_at.astimezone(calendar.tz)
        hours[local.weekday() * 24 + local.hour] += 1
        day_kinds[(local.date().isoformat(), d.kind)] += 1
    return Report(
        weeks=ordered("w"),
        kinds=ordered("k", lambda k: kind_order.get(k, len(KINDS))),
        days=ordered("d"),
        total=rows.get("total", Figures("Total")),
        samples=len(samples),
        arrivals_by_hour=hours,
        day_kinds=dict(day_kinds),
    )


def _dossier(row: Figures, d: DossierFacts, calendar: BusinessCalendar, end: datetime) -> None:
    row.dossiers += 1
    answered = d.first_responded_at
    if answered is not None or d.due <= end:
        row.responses_due += 1
        late = answered is None or answered > d.due
        if late:
            row.late += 1
            row.warned += d.warned_at is not None and _near(d.warned_at, d.warning_at)
            row.detected += d.breached_at is not None and _near(d.breached_at, d.due)
            row.escalated += d.breach_escalated_at is not None
        else:
            row.in_time += 1
            row.false_alarms += d.breached_at is not None
            # a warning is due at 75 % whatever happens after: only one before it is wrong
            if d.warned_at is not None and d.warned_at < d.warning_at - TOLERANCE:
                row.false_alarms += 1
    row.reminders += d.reminders
    row.escalations += d.escalations
    if d.status == "closed" and d.closed_at is not None:
        row.closed += 1
        hours = calendar.business_time_between(d.received_at, d.closed_at) / timedelta(hours=1)
        row.closure_hours.append(hours)
    else:
        row.open_at_end += 1
        # still in the queue at the end although its first response fell due (a deposit of the
        # last evening is not forgotten, only not taken yet)
        row.never_taken += d.taken_at is None and d.technician_id is None and d.due <= end


def _booking(row: Figures, booking: Booking, calendar: BusinessCalendar) -> None:
    row.trainings += 1
    if booking.starts_at is not None:
        window = booking_days(calendar, booking.asked_at)
        row.trainings_in_window += booking.starts_at.astimezone(calendar.tz).date() in window


def _each(
    items: Iterable[Booking],
    by_id: dict[str, DossierFacts],
    groups: Callable[[DossierFacts], list[Figures]],
    apply: Callable[[Figures, Booking], None],
) -> None:
    for item in items:
        d = by_id.get(item.dossier_id)
        if d is not None:
            for row in groups(d):
                apply(row, item)


def _near(actual: datetime, expected: datetime) -> bool:
    return abs(actual - expected) <= TOLERANCE


def week_label(monday: date) -> str:
    """« sem. du 03/05 »."""
    return f"sem. du {monday:%d/%m}"
