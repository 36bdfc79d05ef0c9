"""The training, bugs and evolutions services, simulated with their own rules.

Each answers the dossier's hand-over as its NATS responder does (the same answer fields), then
publishes its facts as the real service does (the same event types, ids and data the dossier
workflow reads); the host delivers them with the real signal bridge (workflows/bridge.py).
Where a service's rule is pure, it is the service's own function:

- training (R7): the slot is `services.training.domain.plan` over the trainers' agendas (their
  appointments and absences), the earliest free slot today or the next business day; without
  one, `training.booking.unavailable` and the training lead books the first alternative by
  hand (`alternatives`, checked by `check_chosen_slot`); the trainer holds it at its time;
- bugs (R8): a bug dossier joins a known open bug of its software or reports a new one;
  developers take new bugs in order and record each step under `services.bugs.domain.
  check_step` (reproduce, diagnose, fix for the next version); a release of a software
  releases every completed fix it carries (`carries_fix`) and tells every linked dossier;
- evolutions (R9): a request enters the backlog; the weekly review of its software (the slot
  read by `services.evolutions.domain.ReviewSlot`) lists every undecided one; a product
  manager then decides, accepted with a specification or rejected with a reason
  (`check_decision`), and every requester's dossier is told.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Protocol

from assistance.business_time import BusinessCalendar
from assistance.events import Event
from services.bugs import domain as bugs
from services.dossier.state import HandOver
from services.evolutions import domain as evolutions
from services.training import domain as training
from simulation.arrivals import Arrival
from simulation.clock import Bell, Clock
from simulation.figures import Booking, Decided, FixReleased
from simulation.scenario import Scenario

# services/training/settings.py: an hour, on a half-hour grid, at least 30 minutes ahead
SLOTS = training.SlotPolicy(
    duration=timedelta(hours=1), step=timedelta(minutes=30), notice=timedelta(minutes=30)
)


class Host(Protocol):
    """What the services need of the simulated world."""

    clock: Clock
    calendar: BusinessCalendar
    scenario: Scenario

    def arrival(self, dossier_id: str) -> Arrival: ...

    def publish(self, event: Event) -> None:
        """Publish a fact: the signal bridge takes it to every dossier it names, a moment
        later (as the outbox relay and the bus do)."""

    def resolved(self, dossier_id: str) -> None:
        """A dossier got a resolution: its customer may confirm it."""


def uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def person_id(role: str, number: int) -> str:
    """A stable id for a simulated person."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"simulation:{role}:{number}"))


def business_after(calendar: BusinessCalendar, start: datetime, hours: float) -> datetime:
    return calendar.add_business_time(start, timedelta(hours=hours))


# --- training (R7) -------------------------------------------------------------------------


@dataclass
class Trainer:
    id: uuid.UUID
    name: str
    absences: tuple[tuple[datetime, datetime], ...]
    appointments: list[tuple[datetime, datetime]] = field(default_factory=list)

    def agenda(self) -> training.Agenda:
        return training.Agenda(self.id, self.name, tuple(self.appointments), self.absences)


class Training:
    def __init__(self, host: Host) -> None:
        self.host = host
        s = host.scenario
        self.trainers = [
            Trainer(
                uuid.UUID(person_id("trainer", n)),
                f"Formateur {n}",
                _absences(s, "trainer", n, host.calendar),
            )
            for n in range(1, s.staff.trainers + 1)
        ]
        self.bookings: list[Booking] = []
        self._rng = random.Random(f"{s.seed}:training")

    async def open(self, order: HandOver, at: datetime) -> dict[str, Any]:
        """`commands.training.open`: the earliest slot in the R7 window, or an alert."""
        request_id = uid(self._rng)
        plan = training.plan(self.host.calendar, self._agendas(), at, SLOTS)
        if plan.window:
            return self._book(order, request_id, plan.window[0], at, by_hand=False)
        data = {
            "dossier_id": order.dossier_id,
            "request_id": request_id,
            "reference": order.reference,
            "software": order.software,
            "reason": "no_slot" if self.trainers else "no_trainer",
            "alternatives": [slot.as_json() for slot in plan.alternatives],
        }
        self._publish(f"{request_id}:unavailable", "training.booking.unavailable", data)
        self.host.clock.spawn(self._lead_books(order, request_id, at), "responsable formation")
        return {"ok": True, "status": "unavailable", **data}

    async def _lead_books(self, order: HandOver, request_id: str, asked_at: datetime) -> None:
        """The training lead, alerted, books the first alternative by hand."""
        arrival = self.host.arrival(order.dossier_id)
        rng = random.Random(f"{self.host.scenario.seed}:lead:{arrival.number}")
        hours = self.host.scenario.hours.rebooking.draw(rng)
        await self.host.clock.sleep_until(
            business_after(self.host.calendar, self.host.clock.now, hours)
        )
        now = self.host.clock.now
        # as the alert offered them: the first free slots after the R7 window
        after = training.booking_days(self.host.calendar, asked_at)[1]
        options = training.alternatives(
            self.host.calendar, self._agendas(), after, SLOTS, now + SLOTS.notice
        )
        if not options:
            self.bookings.append(Booking(order.dossier_id, asked_at, None, by_hand=True))
            return
        slot = options[0]
        training.check_chosen_slot(self.host.calendar, slot.starts_at, slot.ends_at, now)
        self._book(order, request_id, slot, asked_at, by_hand=True)

    def _book(
        self,
        order: HandOver,
        request_id: str,
        slot: training.Slot,
        asked_at: datetime,
        by_hand: bool,
    ) -> dict[str, Any]:
        trainer = next(t for t in self.trainers if t.id == slot.trainer_id)
        trainer.appointments.append((slot.starts_at, slot.ends_at))
        self.bookings.append(Booking(order.dossier_id, asked_at, slot.starts_at, by_hand))
        appointment_id = uid(self._rng)
        data = {
            "dossier_id": order.dossier_id,
            "appointment_id": appointment_id,
            "request_id": request_id,
            "reference": order.reference,
            "software": order.software,
            **slot.as_json(),
            "link": f"https://visio.manao.example/formation/{appointment_id[:8]}",
            "sequence": 0,
        }
        self._publish(f"{appointment_id}:booked", "training.appointment.booked", data)
        self.host.clock.spawn(self._held(data, slot.ends_at), "formation")
        return {"ok": True, "status": "booked", **data}

    async def _held(self, data: dict[str, Any], ends_at: datetime) -> None:
        """The trainer holds the appointment; the dossier gets its resolution."""
        await self.host.clock.sleep_until(ends_at)
        held = {
            **data,
            "notes": "Formation personnalisée donnée ; paramétrage revu avec le client.",
        }
        self._publish(f"{data['appointment_id']}:held", "training.appointment.held", held)
        self.host.resolved(data["dossier_id"])

    def _agendas(self) -> list[training.Agenda]:
        return [t.agenda() for t in self.trainers]

    def _publish(self, event_id: str, type_: str, data: dict[str, Any]) -> None:
        self.host.publish(
            Event(id=event_id, type=type_, occurred_at=self.host.clock.now, data=data)
        )


def _absences(
    scenario: Scenario, role: str, number: int, calendar: BusinessCalendar
) -> tuple[tuple[datetime, datetime], ...]:
    """A person's days off, as whole local days."""
    found = []
    for a in scenario.staff.absences:
        if (a.role, a.number) == (role, number):
            start = datetime.combine(a.first, time(0), tzinfo=calendar.tz)
            end = datetime.combine(a.last + timedelta(days=1), time(0), tzinfo=calendar.tz)
            found.append((start, end))
    return tuple(found)


# --- bugs (R8) -----------------------------------------------------------------------------


@dataclass
class Bug:
    id: str
    number: int
    software: str
    dossiers: list[str]
    state: bugs.State = bugs.State.new
    developer_id: uuid.UUID | None = None
    fix_version: str | None = None
    seq: int = 0


class Bugs:
    def __init__(self, host: Host) -> None:
        self.host = host
        s = host.scenario
        self.bugs: list[Bug] = []
        self.todo: list[Bug] = []  # reported, not taken by a developer yet
        self.bell = Bell(host.clock)
        self.released: list[FixReleased] = []
        self.versions = {name: version for name, version in s.first_versions.items()}
        self.planned = _planned_versions(s)
        self._rng = random.Random(f"{s.seed}:bugs")
        self._numbers = itertools.count(1)

    def start(self) -> None:
        s = self.host.scenario
        for n in range(1, s.staff.developers + 1):
            self.host.clock.spawn(self._developer(n), f"développeur {n}")
        self.host.clock.spawn(self._releases(), "versions")

    async def open(self, order: HandOver, at: datetime) -> dict[str, Any]:
        """`commands.bugs.open`: the dossier joins a known open bug, or reports a new one."""
        arrival = self.host.arrival(order.dossier_id)
        known = [b for b in self.bugs if b.software == order.software and b.state in _OPEN]
        if arrival.known_bug and known:
            bug = random.Random(f"{self.host.scenario.seed}:known:{arrival.number}").choice(known)
            bug.dossiers.append(order.dossier_id)
            self._fact(bug, "linked", [order.dossier_id])
            created = False
        else:
            number = next(self._numbers)
            bug = Bug(uid(self._rng), number, order.software, [order.dossier_id])
            self.bugs.append(bug)
            self.todo.append(bug)
            self._fact(bug, "reported", [order.dossier_id], title=order.subject)
            self.bell.ring()
            created = True
        return {"ok": True, "bug_id": bug.id, "reference": _reference(bug), "created": created}

    async def _developer(self, number: int) -> None:
        """A developer takes the oldest new bug and takes it to its fix (R8)."""
        clock, s = self.host.clock, self.host.scenario
        calendar = s.person_calendar("developer", number)
        me = uuid.UUID(person_id("developer", number))
        while True:
            if not calendar.is_open(clock.now):
                await clock.sleep_until(calendar.next_opening(clock.now))
                continue
            if not self.todo:
                await self.bell.wait()
                continue
            bug = self.todo.pop(0)
            bugs.check_claim(_facts(bug), me)
            bug.developer_id = me
            rng = random.Random(f"{s.seed}:bug:{bug.number}")
            for step, spread in (
                (bugs.Step.reproduced, s.hours.reproduce),
                (bugs.Step.diagnosed, s.hours.bug_diagnosis),
                (bugs.Step.fix_completed, s.hours.fix),
            ):
                await clock.sleep_until(business_after(calendar, clock.now, spread.draw(rng)))
                bugs.check_step(_facts(bug), step, me)
                bug.state = bugs.State(step.value)
                if step is bugs.Step.fix_completed:
                    bug.fix_version = self._next_version(bug.software, clock.now)
                    self._fact(bug, step.value, None, version=bug.fix_version)
                else:
                    self._fact(bug, step.value, None)

    async def _releases(self) -> None:
        """Each release releases every completed fix it carries; every linked customer is
        told the version (the dossier mails them, R8)."""
        clock = self.host.clock
        for software, at, version in self.planned:
            await clock.sleep_until(at)
            self.versions[software] = version
            for bug in self.bugs:
                if (
                    bug.software == software
                    and bug.state is bugs.State.fix_completed
                    and bug.fix_version is not None
                    and bugs.carries_fix(version, bug.fix_version)
                ):
                    bug.state = bugs.State.released
                    self.released.append(
                        FixReleased(bug.id, software, version, clock.now, tuple(bug.dossiers))
                    )
                    self._fact(
                        bug,
                        "released",
                        None,
                        version=version,
                        fix_version=bug.fix_version,
                        released_at=clock.now.isoformat(),
                    )
                    for dossier_id in bug.dossiers:
                        self.host.resolved(dossier_id)

    def _next_version(self, software: str, now: datetime) -> str:
        """The version the fix is made for: the software's next planned release."""
        for name, at, version in self.planned:
            if name == software and at > now:
                return version
        return next_version(self.versions[software])

    def _fact(self, bug: Bug, what: str, dossier_ids: list[str] | None, **data: Any) -> None:
        """`bugs.bug.<what>`, to the dossiers named (default: every linked dossier)."""
        bug.seq += 1
        payload = {
            "bug_id": bug.id,
            "bug_reference": _reference(bug),
            "software": bug.software,
            "state": bug.state.value,
            "dossier_ids": list(dossier_ids if dossier_ids is not None else bug.dossiers),
            **data,
        }
        self.host.publish(
            Event(
                id=f"{bug.id}:{bug.seq}",
                type=f"bugs.bug.{what}",
                occurred_at=self.host.clock.now,
                data=payload,
            )
        )


_OPEN = frozenset(bugs.State) - bugs.CLOSED


def _facts(bug: Bug) -> bugs.BugFacts:
    return bugs.BugFacts(bug.state, bug.developer_id)


def _reference(bug: Bug) -> str:
    return f"B-{bug.number:05d}"


def next_version(version: str) -> str:
    """The next minor version: 5.2 → 5.3, 5.9 → 5.10."""
    head, _, last = version.rpartition(".")
    number = int(last) + 1 if last.isdigit() else 1
    return f"{head}.{number}" if head else str(number)


def _planned_versions(scenario: Scenario) -> list[tuple[str, datetime, str]]:
    """Every release of the run with its version number, in order."""
    current = dict(scenario.first_versions)
    planned = []
    for release in scenario.release_times():
        current[release.software] = next_version(current[release.software])
        planned.append((release.software, release.at, current[release.software]))
    return planned


# --- evolutions (R9) -----------------------------------------------------------------------


@dataclass
class Request:
    id: str
    evolution_id: str
    dossier_id: str
    software: str
    recorded_at: datetime
    reviewed: bool = False
    deciding: bool = False


class Evolutions:
    def __init__(self, host: Host) -> None:
        self.host = host
        s = host.scenario
        self.requests: list[Request] = []
        self.decided: list[Decided] = []
        self.reviews = 0
        self._rng = random.Random(f"{s.seed}:evolutions")
        self._turn = itertools.count()

    def start(self) -> None:
        self.host.clock.spawn(self._reviews(), "revue des évolutions")

    async def open(self, order: HandOver, at: datetime) -> dict[str, Any]:
        """`commands.evolutions.open`: the request enters its software's backlog."""
        request = Request(uid(self._rng), uid(self._rng), order.dossier_id, order.software, at)
        self.requests.append(request)
        self._publish(
            f"{request.id}:recorded",
            "recorded",
            {
                "request_id": request.id,
                "evolution_id": request.evolution_id,
                "dossier_id": order.dossier_id,
                "reference": order.reference,
                "software": order.software,
            },
        )
        return {"ok": True, "request_id": request.id, "evolution_id": request.evolution_id}

    async def _reviews(self) -> None:
        """The weekly review of each software lists every undecided request (R9)."""
        clock = self.host.clock
        for held_at in self.host.scenario.review_times():
            await clock.sleep_until(held_at)
            self.reviews += 1
            by_software: dict[str, list[Request]] = defaultdict(list)
            for r in self.requests:
                if not r.deciding and r.recorded_at <= clock.now:
                    by_software[r.software].append(r)
            week = evolutions.iso_week(clock.now)
            for software, items in sorted(by_software.items()):
                review_id = uid(self._rng)
                for r in items:
                    self._publish(
                        f"{review_id}:{r.evolution_id}:reviewed",
                        "reviewed",
                        {
                            "review_id": review_id,
                            "week": week,
                            "software": software,
                            "evolution_id": r.evolution_id,
                            "carried_over": r.reviewed,
                            "request_id": r.id,
                            "request_ids": [r.id],
                            "dossier_ids": [r.dossier_id],
                        },
                    )
                    r.reviewed = True
                    if self.host.scenario.staff.product_managers:
                        r.deciding = True
                        clock.spawn(self._decide(r), "chef de produit")

    async def _decide(self, request: Request) -> None:
        clock, s = self.host.clock, self.host.scenario
        number = next(self._turn) % s.staff.product_managers + 1
        calendar = s.person_calendar("product_manager", number)
        arrival = self.host.arrival(request.dossier_id)
        rng = random.Random(f"{s.seed}:decision:{arrival.number}")
        await clock.sleep_until(business_after(calendar, clock.now, s.hours.decision.draw(rng)))
        decision: evolutions.Decision = "accepted" if arrival.accepted else "rejected"
        reason = None if arrival.accepted else "Hors du périmètre prévu pour cette année."
        specification = (
            "## Besoin\nCe que le client a décrit.\n## Solution retenue\nÀ détailler."
            if arrival.accepted
            else None
        )
        evolutions.check_decision(decision, reason, specification)
        self.decided.append(
            Decided(request.evolution_id, decision, clock.now, (request.dossier_id,))
        )
        self._publish(
            f"{request.evolution_id}:decided",
            decision,
            {
                "evolution_id": request.evolution_id,
                "software": request.software,
                "decision": decision,
                "title": "Demande d'évolution",
                "reason": reason,
                "specification": specification,
                "request_id": request.id,
                "request_ids": [request.id],
                "dossier_ids": [request.dossier_id],
                "decided_at": clock.now.isoformat(),
            },
        )

    def _publish(self, event_id: str, what: str, data: dict[str, Any]) -> None:
        self.host.publish(
            Event(
                id=event_id,
                type=f"evolutions.request.{what}",
                occurred_at=self.host.clock.now,
                data=data,
            )
        )
