"""The simulated centre: requests arriving, technicians at the desk, customers, the services.

Everyone acts on the real dossier workflows only as production does:
- a deposit starts the workflow with the sender intake's relay is given
  (`workflows.senders.dossier_starter`: the opening as intake records it, R3 due time from the
  calendar, workflow id = dossier id);
  a phone call is logged by the technician who answers it (R1: answered live);
- technicians send the updates the API sends (take, diagnose, respond, request_information,
  screen_share, record_workaround, close), in the queue's order (simulation/desk.py, R4);
- customers answer by mail (the `customer_message` signal intake's relay sends) and confirm
  resolutions (the `confirm` update);
- the services' facts reach the dossiers through the signal bridge (workflows/bridge.py).
A refused command is counted, never retried blindly.

At each business day's closing the follow-through is checked (R2): every open dossier's
workflow history must hold a live timer, and a dossier out of the queue must have a technician.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from assistance.business_time import BusinessCalendar
from assistance.commitment import Commitment
from assistance.events import Event
from assistance.runtime import Runtime
from assistance.settings import Settings
from services.dossier import domain
from services.dossier.state import (
    Actor,
    ActorCmd,
    CloseCmd,
    CustomerMessage,
    DiagnosisCmd,
    DossierOpening,
    DossierView,
    HandOver,
    MessageCmd,
    ScreenShareCmd,
    WorkaroundCmd,
)
from services.intake.domain import reference
from simulation.arrivals import Arrival
from simulation.clock import Bell, Clock
from simulation.desk import Work, next_work
from simulation.figures import Sample
from simulation.recorder import Recorder
from simulation.scenario import Scenario
from simulation.services import Bugs, Evolutions, Training, business_after, person_id
from workflows.bridge import SignalBridge, dossiers_of
from workflows.senders import dossier_starter
from workflows.types import DossierPolicy

# A hand-over is answered by the simulated service in milliseconds; this bounds a wait that
# would otherwise stall the simulated time for ever (a defect, reported as such).
HANDOVER_WAIT_S = 120.0
TIMER_GUARD = timedelta(seconds=30)
ANSWER_WAIT_S = 120.0  # the same for a command's answer
CHECKS_AT_ONCE = 16
TIMER_OPEN = EventType.EVENT_TYPE_TIMER_STARTED
TIMER_DONE = (EventType.EVENT_TYPE_TIMER_FIRED, EventType.EVENT_TYPE_TIMER_CANCELED)
TASK_EVENTS = {  # whether the workflow has a task in flight after this event
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED: True,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED: True,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: False,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED: True,  # scheduled again
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT: True,
}
REST_TRIES = 100  # × 50 ms


@dataclass
class Technician:
    number: int
    actor: Actor
    calendar: BusinessCalendar  # their hours, their absences off


@dataclass
class Call:
    arrival: Arrival
    since: datetime
    answered: bool = False


@dataclass
class Stats:
    deposits: int = 0
    calls: int = 0
    calls_given_up: int = 0
    commands: int = 0
    signals: int = 0
    waits_for_timers: int = 0  # a command or fact held back for a timer due (see below)
    refused: Counter[str] = field(default_factory=Counter)


class World:
    def __init__(
        self,
        scenario: Scenario,
        client: Client,
        task_queue: str,
        clock: Clock,
        server_now: Callable[[], Awaitable[datetime]],
    ) -> None:
        self.scenario = scenario
        self.server_now = server_now
        self.client = client
        self.clock = clock
        self.calendar = scenario.calendar()
        self.policy: DossierPolicy = scenario.dossier_policy()
        self.commitment = Commitment(self.policy.first_response_hours, self.policy.warning_fraction)
        self.recorder = Recorder(self.commitment, self.hand_over)
        self.stats = Stats()
        self.training = Training(self)
        self.bugs = Bugs(self)
        self.evolutions = Evolutions(self)
        self.technicians = [
            Technician(
                n,
                Actor(person_id("technician", n), "technician", f"Technicien {n}"),
                scenario.person_calendar("technician", n),
            )
            for n in range(1, scenario.staff.technicians + 1)
        ]
        self.samples: list[Sample] = []
        self._bridge = SignalBridge(client)
        self._start = dossier_starter(_runtime(client, task_queue))
        self._arrivals: dict[str, Arrival] = {}
        self._references: dict[str, str] = {}
        self._waiting: dict[str, Work] = {}
        self._calls: list[Call] = []
        self._bell = Bell(clock)
        self._handed: dict[str, asyncio.Future[None]] = {}
        self._answers: dict[tuple[str, int], dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def start(self, arrivals: list[Arrival]) -> None:
        """Everyone to work: the requests arrive, the staff and the services act."""
        self.clock.spawn(self._arrive(arrivals), "arrivées")
        for tech in self.technicians:
            self.clock.spawn(self._technician(tech), tech.actor.name)
        self.bugs.start()
        self.evolutions.start()
        self.clock.spawn(self._checks(), "contrôles")

    # --- what the services ask of the world (simulation.services.Host) ------------------------

    def arrival(self, dossier_id: str) -> Arrival:
        return self._arrivals[dossier_id]

    def publish(self, event: Event) -> None:
        """A service's fact, taken to its dossiers by the real signal bridge, as a relay
        would: a moment later, by another task."""
        self.clock.spawn(self._deliver(event), "pont des signaux")

    async def _deliver(self, event: Event) -> None:
        await self._no_timer_due(*dossiers_of(event))
        self.stats.signals += 1
        await self._bridge(event)

    def resolved(self, dossier_id: str) -> None:
        arrival = self._arrivals[dossier_id]
        if arrival.confirms and arrival.confirm_hours < self.policy.confirmation_hours:
            self.clock.spawn(self._customer_confirms(dossier_id, arrival), "client")

    async def hand_over(self, order: HandOver, at: datetime) -> dict[str, Any]:
        """The `hand_over` activity: the service's answer (R7–R9), once per dossier and
        attempt as the real responders answer (a retried activity gets the same answer)."""
        key = (order.dossier_id, order.attempt)
        if key not in self._answers:
            service: dict[str, Training | Bugs | Evolutions] = {
                "training": self.training,
                "bugs": self.bugs,
                "evolutions": self.evolutions,
            }
            self._answers[key] = await service[order.service].open(order, at)
        received = self._handover(order.dossier_id)
        if not received.done():
            received.set_result(None)
        return self._answers[key]

    # --- arrivals --------------------------------------------------------------------------------

    async def _arrive(self, arrivals: list[Arrival]) -> None:
        for arrival in arrivals:
            await self.clock.sleep_until(arrival.at)
            if arrival.channel == "phone":
                call = Call(arrival, self.clock.now)
                self._calls.append(call)
                self.stats.calls += 1
                self.clock.spawn(self._caller(call), "appel")
                self._bell.ring()
            else:
                await self._deposit(arrival, arrival.channel)

    async def _caller(self, call: Call) -> None:
        """A caller nobody answers leaves and deposits the request on the site."""
        patience = timedelta(minutes=self.scenario.behaviour.phone_patience_minutes)
        await self.clock.sleep_until(call.since + patience)
        if not call.answered:
            self._calls.remove(call)
            self.stats.calls_given_up += 1
            await self._deposit(call.arrival, "web")

    async def _deposit(
        self, arrival: Arrival, channel: str, technician: Technician | None = None
    ) -> str:
        """Intake's deposit: the opening as intake records it, started by intake's relay."""
        received_at = self.clock.now
        dossier_id = person_id("dossier", arrival.number)
        opening: dict[str, Any] = {
            "dossier_id": dossier_id,
            "reference": reference(received_at.year, arrival.number),
            "channel": channel,
            "requester_email": f"client{arrival.number}@exemple.fr",
            "requester_name": f"Client {arrival.number}",
            "organisation_id": None,
            "software": arrival.software,
            "subject": f"Demande {arrival.number}",
            "description": "Demande simulée.",
            "received_at": received_at.isoformat(),
            "first_response_due": self.commitment.due(self.calendar, received_at).isoformat(),
            "technician_id": technician.actor.user_id if technician else None,
            "technician_name": technician.actor.name if technician else None,
            "caller_phone": "+33 1 23 45 67 89" if technician else None,
            "policy": _policy(self.policy),
        }
        self._arrivals[dossier_id] = arrival
        self._references[dossier_id] = opening["reference"]
        self.recorder.opened(
            DossierOpening(
                dossier_id=dossier_id,
                reference=opening["reference"],
                channel=channel,
                requester_email=opening["requester_email"],
                requester_name=opening["requester_name"],
                software=arrival.software,
                subject=opening["subject"],
                description=opening["description"],
                received_at=received_at,
                first_response_due=datetime.fromisoformat(opening["first_response_due"]),
            ),
            self.calendar,
        )
        await self._start(opening)
        self.stats.deposits += 1
        if technician is None:
            weekend = domain.is_weekend_deposit(self.calendar, received_at)
            self._waiting[dossier_id] = Work(dossier_id, opening["reference"], received_at, weekend)
            self._bell.ring()
        return dossier_id

    # --- technicians -------------------------------------------------------------------------

    async def _technician(self, tech: Technician) -> None:
        clock = self.clock
        while True:
            if not tech.calendar.is_open(clock.now):
                await clock.sleep_until(tech.calendar.next_opening(clock.now))
                continue
            call = next((c for c in self._calls if not c.answered), None)
            if call is not None:
                call.answered = True
                self._calls.remove(call)
                await self._answer_call(tech, call.arrival)
                continue
            work = next_work(tech.actor.user_id, self._waiting.values())
            if work is None:
                await self._bell.wait()
                continue
            del self._waiting[work.dossier_id]
            if work.owner is None:
                await self._take(tech, work.dossier_id)
            else:
                await self._follow_up(tech, work.dossier_id)

    async def _answer_call(self, tech: Technician, arrival: Arrival) -> None:
        """R1: the call is the first response; the technician diagnoses while on the phone."""
        dossier_id = await self._deposit(arrival, "phone", tech)
        await self.clock.sleep(timedelta(minutes=arrival.call))
        await self._treat(tech, dossier_id, arrival, on_phone=True)

    async def _take(self, tech: Technician, dossier_id: str) -> None:
        arrival = self._arrivals[dossier_id]
        if await self._command(dossier_id, "take", ActorCmd(tech.actor)) is None:
            return
        await self.clock.sleep(timedelta(minutes=arrival.take + arrival.diagnose))
        await self._treat(tech, dossier_id, arrival, on_phone=False)

    async def _treat(
        self, tech: Technician, dossier_id: str, arrival: Arrival, *, on_phone: bool
    ) -> None:
        """R5: the diagnosis, then the branch of its kind (R6–R9)."""
        me, kind = tech.actor, arrival.kind
        diagnosis = DiagnosisCmd(
            me,
            kind,
            context="Contexte de travail du client relevé.",
            need="Besoin technique relevé.",
            version=self.bugs.versions.get(arrival.software),
        )
        if await self._command(dossier_id, "diagnose", diagnosis) is None:
            return
        minutes = self._minutes
        if kind == "usage":
            if on_phone:
                await minutes(arrival.close)
                await self._command(
                    dossier_id, "close", CloseCmd(me, "Réponse donnée au téléphone.")
                )
            elif arrival.information_request:
                await minutes(arrival.information)
                question = MessageCmd(me, "Pouvez-vous préciser votre paramétrage ?")
                if await self._command(dossier_id, "request_information", question):
                    self.clock.spawn(self._customer_replies(dossier_id, tech, arrival), "client")
            elif arrival.screen_share:
                link = ScreenShareCmd(me, f"https://visio.manao.example/{arrival.number}")
                if await self._command(dossier_id, "screen_share", link):
                    await minutes(arrival.screen + arrival.close)
                    resolution = "Question traitée en partage d'écran."
                    await self._command(dossier_id, "close", CloseCmd(me, resolution))
            else:
                await self._answer_and_close(tech, dossier_id, arrival)
        elif kind == "bug":
            await minutes(arrival.workaround_minutes)
            if arrival.workaround:
                fix = WorkaroundCmd(me, text="Contournement : passer par l'export manuel.")
            else:
                # no workaround: the customer is told so, and that the developers take over
                # (recording the reason alone answers nobody, R3)
                if not on_phone:
                    news = "Pas de contournement pour l'instant : le bug part aux développeurs."
                    await self._command(dossier_id, "respond", MessageCmd(me, news))
                fix = WorkaroundCmd(me, none_reason="Aucun contournement possible.")
            if await self._command(dossier_id, "record_workaround", fix):
                await self._handed_over(dossier_id)
        else:  # advanced usage, evolution: the diagnosis hands the dossier over (R7, R9)
            await self._handed_over(dossier_id)

    async def _follow_up(self, tech: Technician, dossier_id: str) -> None:
        """The customer answered the technician's question: the answer, then the closure."""
        await self._answer_and_close(tech, dossier_id, self._arrivals[dossier_id])

    async def _answer_and_close(self, tech: Technician, dossier_id: str, arrival: Arrival) -> None:
        await self._minutes(arrival.answer)
        answer = MessageCmd(tech.actor, "Voici la marche à suivre, étape par étape.")
        if await self._command(dossier_id, "respond", answer):
            await self._minutes(arrival.close)
            resolution = "Question d'utilisation résolue."
            await self._command(dossier_id, "close", CloseCmd(tech.actor, resolution))

    async def _handed_over(self, dossier_id: str) -> None:
        """Wait (real time) until the service got the dossier's hand-over: the clock does not
        move on before the service has planned what it does."""
        try:
            await asyncio.wait_for(asyncio.shield(self._handover(dossier_id)), HANDOVER_WAIT_S)
        except TimeoutError:
            raise RuntimeError(
                f"hand-over of dossier {dossier_id} never reached its service"
            ) from None

    def _handover(self, dossier_id: str) -> asyncio.Future[None]:
        if dossier_id not in self._handed:
            self._handed[dossier_id] = asyncio.get_running_loop().create_future()
        return self._handed[dossier_id]

    async def _minutes(self, minutes: float) -> None:
        await self.clock.sleep(timedelta(minutes=minutes))

    # --- customers ---------------------------------------------------------------------------

    async def _customer_replies(self, dossier_id: str, tech: Technician, arrival: Arrival) -> None:
        at = business_after(self.calendar, self.clock.now, arrival.reply_hours)
        await self.clock.sleep_until(at)
        message = CustomerMessage(
            text="Voici les précisions demandées.",
            author_email=f"client{arrival.number}@exemple.fr",
            via="mail",
            message_id=f"<reponse-{arrival.number}@exemple.fr>",
            received_at=self.clock.now,
        )
        await self._no_timer_due(dossier_id)
        await self.client.get_workflow_handle(dossier_id).signal("customer_message", message)
        self.stats.signals += 1
        self._waiting[dossier_id] = Work(
            dossier_id, self._references[dossier_id], self.clock.now, owner=tech.actor.user_id
        )
        self._bell.ring()

    async def _customer_confirms(self, dossier_id: str, arrival: Arrival) -> None:
        at = business_after(self.calendar, self.clock.now, arrival.confirm_hours)
        await self.clock.sleep_until(at)
        customer = Actor(
            person_id("customer", arrival.number), "customer", f"Client {arrival.number}"
        )
        await self._command(dossier_id, "confirm", ActorCmd(customer))

    # --- commands ----------------------------------------------------------------------------

    async def _command(self, dossier_id: str, name: str, cmd: Any) -> DossierView | None:
        """An update, as the API sends it (its own id); None if the workflow refused it."""
        await self._no_timer_due(dossier_id)
        handle = self.client.get_workflow_handle(dossier_id)
        self.stats.commands += 1
        try:
            view: DossierView = await asyncio.wait_for(
                handle.execute_update(
                    name, cmd, id=f"simulation-{next(self._ids)}", result_type=DossierView
                ),
                ANSWER_WAIT_S,
            )
        except TimeoutError:
            raise RuntimeError(
                f"dossier {dossier_id}: no answer to {name!r} after {ANSWER_WAIT_S:.0f} s"
            ) from None
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            code = cause.type if isinstance(cause, ApplicationError) and cause.type else "refused"
            self.stats.refused[f"{name}: {code}"] += 1
            return None
        return view

    # --- R2: the follow-through, checked --------------------------------------------------------

    async def _checks(self) -> None:
        """At each business day's closing (the run ends with one more)."""
        days = (self.scenario.end - self.scenario.begin).days
        for offset in range(days):
            closing = self.calendar.closing_of_day(self.scenario.start + timedelta(days=offset))
            if closing is not None and closing > self.clock.now:
                await self.clock.sleep_until(closing)
                await self.check()

    async def check(self) -> Sample:
        """Every open dossier: a technician once out of the queue, a live timer (R2)."""
        open_ = [d for d in self.recorder.dossiers.values() if d.status != "closed"]
        limit = asyncio.Semaphore(CHECKS_AT_ONCE)

        async def no_timer(dossier_id: str) -> bool:
            async with limit:
                return not await self.live_timer(dossier_id)

        silent = await asyncio.gather(*(no_timer(d.dossier_id) for d in open_))
        sample = Sample(
            at=self.clock.now,
            open=len(open_),
            queued=sum(d.status == "new" for d in open_),
            without_owner=tuple(
                d.dossier_id for d in open_ if d.status != "new" and d.technician_id is None
            ),
            without_timer=tuple(d.dossier_id for d, s in zip(open_, silent, strict=True) if s),
        )
        self.samples.append(sample)
        return sample

    async def live_timer(self, dossier_id: str) -> bool:
        """Whether the dossier's workflow has a timer started and neither fired nor cancelled,
        once it is at rest (a timer that fired a moment ago is followed by the next one in
        the workflow task it wakes)."""
        for _ in range(REST_TRIES):
            timers, busy = await self.timers(dossier_id)
            if timers or not busy:
                return bool(timers)
            await asyncio.sleep(0.05)
        return False

    async def timers(self, dossier_id: str) -> tuple[list[datetime], bool]:
        """When each live timer of the dossier's workflow is due, from its history, and
        whether a workflow task is scheduled or running."""
        history = await self.client.get_workflow_handle(dossier_id).fetch_history()
        running: dict[str, datetime] = {}
        busy = False
        for event in history.events:
            kind = event.event_type
            if kind == TIMER_OPEN:
                a = event.timer_started_event_attributes
                started = event.event_time.ToDatetime(tzinfo=UTC)
                running[a.timer_id] = started + a.start_to_fire_timeout.ToTimedelta()
            elif kind == TIMER_DONE[0]:
                running.pop(event.timer_fired_event_attributes.timer_id, None)
            elif kind == TIMER_DONE[1]:
                running.pop(event.timer_canceled_event_attributes.timer_id, None)
            elif kind in TASK_EVENTS:
                busy = TASK_EVENTS[kind]
        return sorted(running.values()), busy

    async def _no_timer_due(self, *dossier_ids: str) -> None:
        """Wait until none of these dossiers has a timer due within `TIMER_GUARD`.

        The time-skipping server strands a workflow whose task cancels a timer that fired
        while the task was with the worker: it refuses the completion ("invalid history
        builder state for action", temporalio/sdk-java#3088) and never sends the task again.
        Its clock runs at real pace while work is in flight, and a command usually moves the
        dossier's deadline (its timer is cancelled): so a command or a fact is never sent
        to a dossier whose timer is about to fire; its sender waits for the next tick after
        it, when the timer has fired and its step is done."""
        while dossier_ids:
            now = await self.server_now()
            due = [
                at
                for timers, _ in await asyncio.gather(*(self.timers(d) for d in dossier_ids))
                for at in timers
                if at <= now + TIMER_GUARD
            ]
            if not due:
                return
            self.stats.waits_for_timers += 1
            await self.clock.sleep_until(max(max(due), now) + timedelta(seconds=1))

    def queued(self) -> int:
        return sum(w.owner is None for w in self._waiting.values())


def _runtime(client: Client, task_queue: str) -> Runtime:
    """What intake's relay starts the dossiers with: a runtime of this process, its Temporal
    client the test server's (nothing else of it is opened)."""
    rt = Runtime(Settings(temporal_task_queue=task_queue), name="simulation")
    rt.temporal = client
    return rt


def _policy(policy: DossierPolicy) -> dict[str, Any]:
    return asdict(policy)
