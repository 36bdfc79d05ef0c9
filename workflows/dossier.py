"""DossierWorkflow: one per dossier, from opening to closure and beyond (R2–R10).

Workflow id = dossier id. The process, as MISSION.md tells it:
  open → acknowledge (R3 due time) → a technician takes it → diagnosis (R5) →
  usage: answer at once, screen sharing, within the hour (R6)
  advanced usage: training appointment through the training service (R7)
  bug: workaround first, then the developers, then the fixed version (R8)
  evolution: the product review decides (R9)
  → closure with a resolution (R10) → reopen within the window, one history.
Every open dossier has a live timer (R2): first-response warning and breach (R3), reminders
and escalation without activity, customer reminders while waiting for them.

Updates (validated, refused with a reason before anything is written): take, release,
diagnose, respond, note, request_information, screen_share, record_workaround, close,
confirm, reopen. Signals: customer_message (mail replies), service_event (facts from the
training, bugs and evolutions services). Query: view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from assistance.business_time import BusinessCalendar
    from assistance.events import Event
    from services.dossier import domain
    from services.dossier.domain import Refused
    from workflows.types import (
        Actor,
        CloseCmd,
        CustomerMessage,
        DiagnosisCmd,
        DossierOpening,
        DossierState,
        DossierView,
        HandOver,
        MailOrder,
        MessageCmd,
        ReopenCmd,
        ScreenShareCmd,
        StaffNotice,
        TakeCmd,
        WorkaroundCmd,
    )

RETRY_FOREVER = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
QUICK = timedelta(seconds=30)
SEEN_EVENTS_KEPT = 500
# Facts reaching a closed dossier used to move it out of "closed" without a reopening.
LATE_FACTS_KEEP_CLOSED = "late-facts-keep-closed"
# R2: after an escalation the reminder cycle starts again, waiting for the customer included.
FOLLOW_UP_CYCLES = "follow-up-cycles"
# R3: handing an advanced-usage or evolution request over tells the customer at once.
HANDOVER_ANSWERS = "handover-answers-customer"


@contextmanager
def _plain_python() -> Iterator[None]:
    """For the business calendar. It asks the `holidays` package for the public holidays of a
    year, and that package imports its countries lazily and translates their names (gettext,
    locale): deterministic, but refused by the sandbox the first time a year is computed in
    a process (a fresh worker, a replay) and the calendar's cache cannot answer."""
    with workflow.unsafe.imports_passed_through(), workflow.unsafe.sandbox_unrestricted():
        yield


def _refuse(exc: Refused) -> ApplicationError:
    return ApplicationError(exc.message, type=exc.code, non_retryable=True)


@workflow.defn
class DossierWorkflow:
    @workflow.init
    def __init__(self, opening: DossierOpening) -> None:
        self.opening = opening
        self.policy = opening.policy
        self.state = opening.carried or DossierState()
        self.fresh = opening.carried is None
        with _plain_python():
            self.calendar = BusinessCalendar.parse(
                self.policy.business_hours, self.policy.closed_days, timezone=self.policy.timezone
            )
        self.lock = asyncio.Lock()
        self.changed = False
        self.pending: list[asyncio.Task[Any]] = []
        self.steps_this_run = 0

    # --- the process -----------------------------------------------------------------------

    @workflow.run
    async def run(self, opening: DossierOpening) -> str:
        if self.fresh:
            async with self.lock:
                await self._open()
        while True:
            if self.state.status == "closed":
                if not await self._wait_for_reopening():
                    break
                continue
            await self._wait_for_change_or_deadline()
            if self._history_is_long():
                await self._settle()
                workflow.continue_as_new(replace(self.opening, carried=self.state))
        await self._settle()
        return "closed"

    async def _open(self) -> None:
        o, s = self.opening, self.state
        s.last_activity_at = o.received_at
        with _plain_python():
            weekend = domain.is_weekend_deposit(self.calendar, o.received_at)
        s.details["weekend_deposit"] = weekend
        if o.message_id:
            s.thread.append(o.message_id)
        if o.channel == "phone" and o.technician_id:
            # R1/R3: a phone call is answered live by the technician who took it
            s.technician_id, s.technician_name = o.technician_id, o.technician_name
            s.first_responded_at = o.received_at
            s.status = "in_progress"
        self._emit(
            "opened",
            {
                "reference": o.reference,
                "channel": o.channel,
                "requester_email": o.requester_email,
                "requester_name": o.requester_name,
                "organisation_id": o.organisation_id,
                "software": o.software,
                "subject": o.subject,
                "description": o.description,
                "received_at": o.received_at.isoformat(),
                "first_response_due": o.first_response_due.isoformat(),
            },
            timeline=self._entry(
                "opened",
                f"Dossier ouvert ; première réponse garantie avant le "
                f"{self._fmt(o.first_response_due)}.",
                visibility="customer",
            ),
        )
        self._mail(
            "acknowledgement",
            {"first_response_due": o.first_response_due.isoformat()},
            auto=True,
        )

    async def _wait_for_change_or_deadline(self) -> None:
        deadline, action = self._next_deadline()
        self.changed = False
        if deadline is None:
            await workflow.wait_condition(lambda: self.changed)
            return
        wait = deadline - workflow.now()
        if wait > timedelta(0):
            try:
                await workflow.wait_condition(lambda: self.changed, timeout=wait)
                return
            except TimeoutError:
                pass
        async with self.lock:
            # the deadline may have been cancelled while we took the lock
            again, action = self._next_deadline()
            if again is not None and again <= workflow.now() and action is not None:
                await action()

    async def _wait_for_reopening(self) -> bool:
        closed_at = self.state.closed_at or workflow.now()
        window = closed_at + timedelta(days=self.policy.reopen_window_days) - workflow.now()
        if window <= timedelta(0):
            return False
        try:
            await workflow.wait_condition(lambda: self.state.status != "closed", timeout=window)
        except TimeoutError:
            return False
        return True

    def _history_is_long(self) -> bool:
        if self.policy.history_limit and self.steps_this_run >= self.policy.history_limit:
            return True
        return workflow.info().is_continue_as_new_suggested()

    async def _settle(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        while self.pending:
            batch, self.pending = self.pending, []
            await asyncio.gather(*batch)

    # --- timers: R2 follow-through, R3 first response ----------------------------------------

    def _bt(self, start: datetime, hours: float) -> datetime:
        with _plain_python():
            return self.calendar.add_business_time(start, timedelta(hours=hours))

    def _next_deadline(self) -> tuple[datetime | None, Callable[[], Awaitable[None]] | None]:
        s, p = self.state, self.policy
        candidates: list[tuple[datetime, Callable[[], Awaitable[None]]]] = []
        if s.first_responded_at is None and s.status != "closed":
            due = self.opening.first_response_due
            if not s.warned:
                with _plain_python():
                    at = self.calendar.fraction_point(
                        self.opening.received_at, due, p.warning_fraction
                    )
                candidates.append((at, self._warn_first_response))
            elif not s.breached:
                candidates.append((due, self._breach_first_response))
        since = s.waiting_since or s.last_activity_at or self.opening.received_at
        cycles = workflow.patched(FOLLOW_UP_CYCLES)
        if s.status == "waiting_customer":
            if not s.customer_reminded:
                candidates.append(
                    (self._bt(since, p.customer_reminder_hours), self._remind_customer)
                )
            elif s.cycle_from is not None:
                self._follow_up(candidates, self._bt(s.cycle_from, p.reminder_hours), cycles)
            else:
                self._follow_up(candidates, self._bt(since, 2 * p.customer_reminder_hours), cycles)
        elif s.status == "resolved":
            at = self._bt(s.resolved_at or since, p.confirmation_hours)
            candidates.append((at, self._close_unanswered))
        elif s.status in ("new", "in_progress", "waiting_service") and (
            s.first_responded_at is not None or s.breached
        ):
            # before the first response, the R3 warning and breach are the live timer
            last = max(s.last_activity_at or self.opening.received_at, s.breached_at or since)
            if s.cycle_from is not None:
                last = max(last, s.cycle_from)
            quiet = p.service_reminder_hours if s.status == "waiting_service" else p.reminder_hours
            self._follow_up(candidates, self._bt(last, quiet), True)
        if not candidates:
            return None, None
        return min(candidates, key=lambda c: c[0])

    def _follow_up(
        self,
        candidates: list[tuple[datetime, Callable[[], Awaitable[None]]]],
        remind_at: datetime,
        escalate: bool,
    ) -> None:
        """R2: remind the technician, then escalate to an admin if still nothing happens."""
        s = self.state
        if not s.reminded:
            candidates.append((remind_at, self._remind_technician))
        elif escalate and not s.escalated:
            candidates.append((self._bt(remind_at, self.policy.escalation_hours), self._escalate))

    async def _warn_first_response(self) -> None:
        self.state.warned = True
        due = self.opening.first_response_due
        self._notice(
            "technician" if self.state.technician_id else "team",
            "first_response_warning",
            f"Première réponse attendue avant le {self._fmt(due)}",
            f"Le dossier {self.opening.reference} n'a pas encore reçu de première réponse ; "
            f"l'engagement de 4 heures ouvrées expire le {self._fmt(due)}.",
        )
        self._emit(
            "first_response_warned",
            timeline=self._entry(
                "first_response_warning", "Alerte : 75 % du délai de première réponse écoulé."
            ),
        )

    async def _breach_first_response(self) -> None:
        s = self.state
        s.breached, s.breached_at = True, workflow.now()
        s.details["first_response_breached_at"] = workflow.now().isoformat()
        self._notice(
            "admins",
            "first_response_breach",
            f"Engagement de première réponse dépassé : {self.opening.reference}",
            f"Le dossier {self.opening.reference} ({self.opening.software}) n'a pas reçu de "
            f"réponse dans les 4 heures ouvrées "
            f"(échéance {self._fmt(self.opening.first_response_due)}).",
        )
        self._emit(
            "first_response_breached",
            timeline=self._entry(
                "first_response_breach", "Engagement de première réponse dépassé."
            ),
            breach={
                "due": self.opening.first_response_due.isoformat(),
                "software": self.opening.software,
                "technician_id": s.technician_id,
            },
        )

    async def _remind_technician(self) -> None:
        s = self.state
        s.reminded = True
        why = {
            "waiting_customer": "le client n'a toujours pas répondu",
            "waiting_service": "le service concerné n'a pas donné de nouvelles",
        }.get(s.status, "aucune action depuis un moment")
        self._notice(
            "technician" if s.technician_id else "team",
            "reminder",
            f"Relance : dossier {self.opening.reference}",
            f"Le dossier {self.opening.reference} attend une action : {why}.",
        )
        self._emit("reminded", timeline=self._entry("reminder", f"Relance du technicien : {why}."))

    async def _escalate(self) -> None:
        self.state.escalated = True
        self._notice(
            "admins",
            "escalation",
            f"Escalade : dossier {self.opening.reference} sans suite",
            f"Le dossier {self.opening.reference} est resté sans action malgré une relance.",
        )
        self._emit("escalated", timeline=self._entry("escalation", "Dossier escaladé."))
        if workflow.patched(FOLLOW_UP_CYCLES):
            # never silent: a new reminder cycle starts from the escalation
            s = self.state
            s.reminded = s.escalated = False
            s.cycle_from = workflow.now()

    async def _remind_customer(self) -> None:
        self.state.customer_reminded = True
        self._mail(
            "customer_reminder", {"text": self.state.details.get("information_request")}, auto=True
        )
        self._emit(
            "customer_reminded",
            timeline=self._entry(
                "customer_reminder", "Relance envoyée au client.", visibility="customer"
            ),
        )

    async def _close_unanswered(self) -> None:
        resolution = self.state.details.get("proposed_resolution") or "Résolu."
        await self._close(resolution, by="système", mail=True)

    # --- updates ------------------------------------------------------------------------------

    def _check(self, rule: Callable[..., None], *args: Any) -> None:
        try:
            rule(self.state, *args)
        except Refused as exc:
            raise _refuse(exc) from None

    @workflow.update
    async def take(self, cmd: TakeCmd) -> DossierView:
        async with self.lock:
            self._check(domain.check_take, cmd.actor)
            s = self.state
            s.technician_id, s.technician_name = cmd.actor.user_id, cmd.actor.name
            if s.status == "new":
                s.status = "in_progress"
            self._touch()
            self._emit(
                "taken",
                timeline=self._entry(
                    "taken", f"Pris en charge par {cmd.actor.name}.", cmd.actor, "customer"
                ),
            )
            return self.view()

    @take.validator
    def _validate_take(self, cmd: TakeCmd) -> None:
        self._check(domain.check_take, cmd.actor)

    @workflow.update
    async def release(self, cmd: TakeCmd) -> DossierView:
        async with self.lock:
            self._check(domain.check_release, cmd.actor)
            s = self.state
            s.technician_id = s.technician_name = None
            if s.status == "in_progress":
                s.status = "new"
            self._touch()
            self._emit(
                "released",
                timeline=self._entry(
                    "released", f"{cmd.actor.name} rend le dossier à la file.", cmd.actor
                ),
            )
            return self.view()

    @release.validator
    def _validate_release(self, cmd: TakeCmd) -> None:
        self._check(domain.check_release, cmd.actor)

    @workflow.update
    async def diagnose(self, cmd: DiagnosisCmd) -> DossierView:
        async with self.lock:
            self._check(domain.check_diagnosis, cmd.actor, cmd.kind, cmd.context, cmd.need)
            s = self.state
            s.kind, s.context, s.need, s.version = cmd.kind, cmd.context, cmd.need, cmd.version
            self._touch()
            text = f"Diagnostic : {domain.KIND_LABELS[cmd.kind]}."
            if cmd.kind == "usage":
                # R6: resolved within the hour of the request
                target = self._bt(self.opening.received_at, self.policy.usage_target_hours)
                s.details["usage_target"] = target.isoformat()
            self._emit(
                "diagnosed",
                timeline=self._entry(
                    "diagnosed", text, cmd.actor, "customer", data={"kind": cmd.kind}
                ),
                internal={"context": cmd.context, "need": cmd.need},
            )
            self._emit(
                "noted",
                timeline=self._entry(
                    "diagnosis", f"Contexte : {cmd.context}\nBesoin : {cmd.need}", cmd.actor
                ),
            )
            if cmd.kind in ("advanced_usage", "evolution"):
                if workflow.patched(HANDOVER_ANSWERS):
                    self._tell_handover(cmd.kind)
                self._hand_over()
            return self.view()

    @diagnose.validator
    def _validate_diagnose(self, cmd: DiagnosisCmd) -> None:
        self._check(domain.check_diagnosis, cmd.actor, cmd.kind, cmd.context, cmd.need)

    @workflow.update
    async def respond(self, cmd: MessageCmd) -> DossierView:
        async with self.lock:
            self._check(domain.check_response, cmd.actor, cmd.text)
            if cmd.actor.role == "customer":
                await self._customer_said(
                    CustomerMessage(
                        text=cmd.text,
                        author_email="",
                        author_name=cmd.actor.name,
                        attachments=cmd.attachments,
                    )
                )
                return self.view()
            self._first_response()
            self._touch()
            self._emit(
                "responded",
                timeline=self._entry(
                    "response",
                    cmd.text,
                    cmd.actor,
                    "customer",
                    data={"attachments": cmd.attachments} if cmd.attachments else None,
                ),
            )
            self._mail("response", {"text": cmd.text, "author": cmd.actor.name})
            return self.view()

    @respond.validator
    def _validate_respond(self, cmd: MessageCmd) -> None:
        self._check(domain.check_response, cmd.actor, cmd.text)

    @workflow.update
    async def note(self, cmd: MessageCmd) -> DossierView:
        async with self.lock:
            self._check(domain.check_note, cmd.actor, cmd.text)
            self._emit("noted", timeline=self._entry("note", cmd.text, cmd.actor))
            return self.view()

    @note.validator
    def _validate_note(self, cmd: MessageCmd) -> None:
        self._check(domain.check_note, cmd.actor, cmd.text)

    @workflow.update
    async def request_information(self, cmd: MessageCmd) -> DossierView:
        async with self.lock:
            self._check(domain.check_information_request, cmd.actor, cmd.text)
            s = self.state
            self._first_response()
            self._touch()
            s.details["status_before_wait"] = s.status
            s.status, s.waiting_for, s.waiting_since = (
                "waiting_customer",
                "customer",
                workflow.now(),
            )
            s.customer_reminded = False
            s.details["information_request"] = cmd.text
            self._emit(
                "information_requested",
                timeline=self._entry("information_request", cmd.text, cmd.actor, "customer"),
            )
            self._mail("information_request", {"text": cmd.text, "author": cmd.actor.name})
            return self.view()

    @request_information.validator
    def _validate_request_information(self, cmd: MessageCmd) -> None:
        self._check(domain.check_information_request, cmd.actor, cmd.text)

    @workflow.update
    async def screen_share(self, cmd: ScreenShareCmd) -> DossierView:
        async with self.lock:
            self._check(domain.check_screen_share, cmd.actor)
            self._first_response()
            self._touch()
            self.state.details["screen_share"] = cmd.link
            self._emit(
                "screen_share_opened",
                timeline=self._entry(
                    "screen_share",
                    "Session de partage d'écran proposée.",
                    cmd.actor,
                    "customer",
                    data={"link": cmd.link},
                ),
            )
            self._mail("screen_share", {"link": cmd.link, "author": cmd.actor.name})
            return self.view()

    @screen_share.validator
    def _validate_screen_share(self, cmd: ScreenShareCmd) -> None:
        self._check(domain.check_screen_share, cmd.actor)

    @workflow.update
    async def record_workaround(self, cmd: WorkaroundCmd) -> DossierView:
        async with self.lock:
            self._check(domain.check_workaround, cmd.actor, cmd.text, cmd.none_reason)
            s = self.state
            self._touch()
            if cmd.text:
                s.workaround = cmd.text
                s.details["workaround"] = cmd.text
                self._first_response()
                self._emit(
                    "workaround_recorded",
                    timeline=self._entry("workaround", cmd.text, cmd.actor, "customer"),
                    workaround=cmd.text,
                )
                self._mail("workaround", {"text": cmd.text, "author": cmd.actor.name})
            else:
                s.workaround_none_reason = cmd.none_reason
                s.details["workaround_none_reason"] = cmd.none_reason
                self._emit(
                    "workaround_unavailable",
                    timeline=self._entry(
                        "workaround", f"Pas de contournement : {cmd.none_reason}", cmd.actor
                    ),
                )
            self._hand_over()  # R8: the developers only after the workaround gate
            return self.view()

    @record_workaround.validator
    def _validate_workaround(self, cmd: WorkaroundCmd) -> None:
        self._check(domain.check_workaround, cmd.actor, cmd.text, cmd.none_reason)

    @workflow.update
    async def close(self, cmd: CloseCmd) -> DossierView:
        async with self.lock:
            self._check(domain.check_close, cmd.actor, cmd.resolution)
            await self._close(cmd.resolution, by=cmd.actor.name, actor=cmd.actor, mail=True)
            return self.view()

    @close.validator
    def _validate_close(self, cmd: CloseCmd) -> None:
        self._check(domain.check_close, cmd.actor, cmd.resolution)

    @workflow.update
    async def confirm(self, cmd: TakeCmd) -> DossierView:
        async with self.lock:
            self._check(domain.check_confirm, cmd.actor)
            resolution = self.state.details.get("proposed_resolution") or "Résolu."
            await self._close(resolution, by=cmd.actor.name, actor=cmd.actor, mail=True)
            return self.view()

    @confirm.validator
    def _validate_confirm(self, cmd: TakeCmd) -> None:
        self._check(domain.check_confirm, cmd.actor)

    @workflow.update
    async def reopen(self, cmd: ReopenCmd) -> DossierView:
        async with self.lock:
            self._check(domain.check_reopen, cmd.actor, cmd.reason)
            self._reopen(cmd.reason, cmd.actor)
            return self.view()

    @reopen.validator
    def _validate_reopen(self, cmd: ReopenCmd) -> None:
        self._check(domain.check_reopen, cmd.actor, cmd.reason)

    # --- signals ------------------------------------------------------------------------------

    @workflow.signal
    async def customer_message(self, msg: CustomerMessage) -> None:
        async with self.lock:
            if msg.message_id and msg.message_id in self.state.thread:
                return  # the same mail delivered twice joins once
            if self.state.status == "closed":
                self._reopen("Nouveau message du client.", None)
            await self._customer_said(msg)

    @workflow.signal
    async def service_event(self, event: Event) -> None:
        async with self.lock:
            if event.id in self.state.seen_events:
                return  # delivered twice: applied once
            self.state.seen_events = [*self.state.seen_events, event.id][-SEEN_EVENTS_KEPT:]
            await self._on_service_event(event)

    @workflow.query
    def view(self) -> DossierView:
        s = self.state
        return DossierView(
            dossier_id=self.opening.dossier_id,
            reference=self.opening.reference,
            status=s.status,
            kind=s.kind,
            technician_id=s.technician_id,
            technician_name=s.technician_name,
            first_response_due=self.opening.first_response_due,
            first_responded_at=s.first_responded_at,
            closed_at=s.closed_at,
            resolution=s.resolution,
            waiting_for=s.waiting_for,
            seq=s.last_event,
            details=dict(s.details),
        )

    # --- what the commands and facts do --------------------------------------------------------

    async def _customer_said(self, msg: CustomerMessage) -> None:
        s = self.state
        if msg.message_id:
            s.thread.append(msg.message_id)
        if s.status in ("waiting_customer", "resolved"):
            # a reply resumes the follow-through; a reply to a resolution reopens the work
            s.status = "in_progress" if s.technician_id else "new"
            s.waiting_for = s.waiting_since = None
        self._touch()
        self._emit(
            "customer_replied",
            timeline=self._entry(
                "customer_message",
                msg.text,
                None,
                "customer",
                author=msg.author_name or msg.author_email,
                data={"via": msg.via, "attachments": msg.attachments}
                if msg.attachments
                else {"via": msg.via},
            ),
        )
        if s.technician_id:
            self._notice(
                "technician",
                "customer_replied",
                f"Réponse du client : {self.opening.reference}",
                msg.text[:2000],
            )

    async def _on_service_event(self, event: Event) -> None:
        s, d = self.state, event.data
        kind = event.type
        if s.status == "closed" and workflow.patched(LATE_FACTS_KEEP_CLOSED):
            self._on_late_fact(kind, d)
            return
        self._touch()
        if kind in ("training.appointment.booked", "training.appointment.rescheduled"):
            s.details["training"] = d
            self._set_waiting("training")
            when = d.get("starts_at", "")
            self._emit(
                "training_booked",
                timeline=self._entry(
                    "training",
                    f"Rendez-vous de formation le {self._fmt_iso(when)} avec "
                    f"{d.get('trainer_name', 'un formateur')}.",
                    visibility="customer",
                    data=d,
                ),
            )
        elif kind == "training.booking.unavailable":
            s.details["training_alert"] = d
            self._emit(
                "training_unavailable",
                timeline=self._entry(
                    "training",
                    "Aucun créneau de formation dans les délais : responsable formation alerté.",
                    data=d,
                ),
            )
        elif kind == "training.appointment.cancelled":
            s.details["training"] = d
            self._emit(
                "training_cancelled",
                timeline=self._entry(
                    "training", "Rendez-vous de formation annulé.", visibility="customer", data=d
                ),
            )
        elif kind == "training.appointment.held":
            s.details["training"] = d
            self._resolve("Formation effectuée : " + (d.get("notes") or "sujet traité."))
        elif kind == "training.appointment.missed":
            self._emit(
                "training_missed",
                timeline=self._entry(
                    "training",
                    "Rendez-vous manqué : un nouveau créneau est recherché.",
                    visibility="customer",
                    data=d,
                ),
            )
            self._hand_over()
        elif kind.startswith("bugs.bug."):
            await self._on_bug_event(kind.removeprefix("bugs.bug."), d)
        elif kind.startswith("evolutions.request."):
            await self._on_evolution_event(kind.removeprefix("evolutions.request."), d)

    async def _on_bug_event(self, what: str, d: dict[str, Any]) -> None:
        s = self.state
        bug = {**s.details.get("bug", {}), "id": d.get("bug_id"), "state": what}
        s.details["bug"] = bug
        labels = {
            "reported": "Bug transmis aux développeurs.",
            "linked": "Dossier rattaché à un bug connu.",
            "reproduced": "Bug reproduit par les développeurs.",
            "diagnosed": "Cause du bug identifiée.",
            "fix_completed": "Correctif développé ; il sera livré dans une prochaine version.",
        }
        if what == "released":
            version = d.get("version", "")
            bug["fixed_in"] = version
            self._mail("fix_released", {"version": version})
            self._resolve(f"Corrigé dans la version {version}.", mail=False)
        elif what == "not_reproducible":
            questions = d.get("questions") or "Pouvez-vous nous en dire plus ?"
            s.status, s.waiting_for, s.waiting_since = (
                "waiting_customer",
                "customer",
                workflow.now(),
            )
            s.details["information_request"] = questions
            self._emit(
                "information_requested",
                timeline=self._entry(
                    "information_request", f"Bug non reproduit : {questions}", visibility="customer"
                ),
            )
            self._mail("information_request", {"text": questions})
            self._notice(
                "technician",
                "bug_not_reproducible",
                f"Bug non reproduit : {self.opening.reference}",
                questions,
            )
        elif what in labels:
            self._set_waiting("bug_fix")
            self._emit(
                f"bug_{what}",
                timeline=self._entry(
                    "bug", labels[what], visibility="customer", data={"bug_id": d.get("bug_id")}
                ),
            )

    async def _on_evolution_event(self, what: str, d: dict[str, Any]) -> None:
        s = self.state
        s.details["evolution"] = {**s.details.get("evolution", {}), **d, "state": what}
        if what in ("accepted", "rejected"):
            template = f"evolution_{what}"
            self._mail(
                template, {"reason": d.get("reason"), "specification": d.get("specification")}
            )
            decision = "acceptée" if what == "accepted" else "refusée"
            resolution = f"Demande d'évolution {decision}."
            if d.get("reason"):
                resolution += f" {d['reason']}"
            await self._close(resolution, by="chef de produit", mail=False)
        else:
            self._set_waiting("evolution_decision")
            self._emit(
                f"evolution_{what}",
                timeline=self._entry(
                    "evolution",
                    "Demande d'évolution enregistrée pour la revue hebdomadaire."
                    if what == "recorded"
                    else f"Demande d'évolution : {what}.",
                    visibility="customer",
                    data=d,
                ),
            )

    def _on_late_fact(self, kind: str, d: dict[str, Any]) -> None:
        """A fact for a closed dossier (a bug it was linked to, a decision on its request).

        R10: it stays closed until someone reopens it, so no status change and no timer.
        R8/R9: the customer is still told the version that carries the fix, or the decision."""
        s = self.state
        if kind.startswith("bugs.bug."):
            what = kind.removeprefix("bugs.bug.")
            s.details["bug"] = {**s.details.get("bug", {}), "id": d.get("bug_id"), "state": what}
            if what == "released":
                version = d.get("version", "")
                s.details["bug"]["fixed_in"] = version
                self._mail("fix_released", {"version": version})
                self._emit(
                    "bug_released",
                    timeline=self._entry(
                        "bug",
                        f"Correctif livré dans la version {version}.",
                        visibility="customer",
                        data={"bug_id": d.get("bug_id"), "version": version},
                    ),
                )
        elif kind in ("evolutions.request.accepted", "evolutions.request.rejected"):
            what = kind.removeprefix("evolutions.request.")
            s.details["evolution"] = {**s.details.get("evolution", {}), **d, "state": what}
            self._mail(
                f"evolution_{what}",
                {"reason": d.get("reason"), "specification": d.get("specification")},
            )
            decision = "acceptée" if what == "accepted" else "refusée"
            self._emit(
                f"evolution_{what}",
                timeline=self._entry(
                    "evolution", f"Demande d'évolution {decision}.", visibility="customer", data=d
                ),
            )

    def _set_waiting(self, what: str) -> None:
        s = self.state
        s.status, s.waiting_for, s.waiting_since = "waiting_service", what, None

    def _resolve(self, resolution: str, mail: bool = True) -> None:
        """A proposed resolution: the customer confirms, or it closes after a delay."""
        s = self.state
        s.status, s.waiting_for, s.resolved_at = "resolved", "customer", workflow.now()
        s.details["proposed_resolution"] = resolution
        self._emit("resolved", timeline=self._entry("resolved", resolution, visibility="customer"))
        if mail:
            self._mail("resolved", {"resolution": resolution})

    async def _close(
        self, resolution: str, *, by: str, actor: Actor | None = None, mail: bool
    ) -> None:
        s = self.state
        now = workflow.now()
        s.status, s.waiting_for, s.closed_at, s.resolution = "closed", None, now, resolution
        if "usage_target" in s.details:
            s.details["usage_target_met"] = now <= datetime.fromisoformat(s.details["usage_target"])
        self._emit(
            "closed", timeline=self._entry("closed", resolution, actor, "customer", author=by)
        )
        if mail:
            self._mail("closure", {"resolution": resolution})

    def _reopen(self, reason: str, actor: Actor | None) -> None:
        s = self.state
        s.details.setdefault("previous_resolutions", []).append(
            {
                "resolution": s.resolution,
                "closed_at": s.closed_at.isoformat() if s.closed_at else None,
            }
        )
        s.status = "in_progress" if s.technician_id else "new"
        s.closed_at = s.resolution = s.waiting_for = s.waiting_since = None
        s.reopened += 1
        self._touch()
        self._emit(
            "reopened",
            timeline=self._entry(
                "reopened", reason, actor, "customer", author=actor.name if actor else "client"
            ),
        )
        self._mail("reopened", {"reason": reason})

    def _first_response(self) -> None:
        """R3: the first response to the customer stops the clock."""
        if self.state.first_responded_at is None:
            self.state.first_responded_at = workflow.now()

    def _touch(self) -> None:
        """R2: activity restarts the follow-through timer."""
        s = self.state
        s.last_activity_at = workflow.now()
        s.reminded = s.escalated = False
        s.cycle_from = None
        self.changed = True

    def _tell_handover(self, kind: str) -> None:
        """R3: the customer learns at once what happens next (a first response)."""
        self._first_response()
        if kind == "evolution":
            self._mail("evolution_recorded", {})
        else:
            self._mail(
                "response",
                {
                    "text": "Votre question demande une formation ou un paramétrage "
                    "approfondi : un formateur vous propose un rendez-vous aujourd'hui ou "
                    "le prochain jour ouvré. Vous recevrez l'invitation par mail."
                },
            )

    def _hand_over(self) -> None:
        """R7–R9: ask the owning service over NATS; its facts come back as service_event."""
        s, o = self.state, self.opening
        service = {"advanced_usage": "training", "bug": "bugs", "evolution": "evolutions"}[
            s.kind or ""
        ]
        s.handover_attempt += 1
        self._set_waiting(domain.HANDED_OVER[s.kind or ""])
        order = HandOver(
            service=service,
            dossier_id=o.dossier_id,
            reference=o.reference,
            software=o.software,
            organisation_id=o.organisation_id,
            requester_email=o.requester_email,
            requester_name=o.requester_name,
            subject=o.subject,
            description=o.description,
            context=s.context or "",
            need=s.need or "",
            version=s.version,
            workaround=s.workaround,
            attempt=s.handover_attempt,
        )
        self._emit(
            "handed_over",
            timeline=self._entry(
                "handed_over",
                {
                    "training": "Demande transmise au service formation.",
                    "bugs": "Bug transmis à l'équipe de développement.",
                    "evolutions": "Demande d'évolution transmise au chef de produit.",
                }[service],
                visibility="customer",
            ),
            service=service,
        )

        async def ask() -> None:
            answer = await workflow.execute_activity(
                "hand_over",
                order,
                start_to_close_timeout=QUICK,
                retry_policy=RETRY_FOREVER,
                result_type=dict,
            )
            async with self.lock:
                s.details[f"{service}_ticket"] = answer
                self.changed = True

        self.pending.append(asyncio.create_task(ask()))

    # --- side effects (activities), never blocking a command -----------------------------------

    def _set_fields(self) -> dict[str, Any]:
        s = self.state
        return {
            "status": s.status,
            "kind": s.kind,
            "technician_id": s.technician_id,
            "technician_name": s.technician_name,
            "first_responded_at": s.first_responded_at.isoformat()
            if s.first_responded_at
            else None,
            "closed_at": s.closed_at.isoformat() if s.closed_at else None,
            "resolution": s.resolution,
            "details": {**s.details, "waiting_for": s.waiting_for},
        }

    def _emit(
        self,
        what: str,
        extra: dict[str, Any] | None = None,
        *,
        timeline: dict[str, Any] | None = None,
        **facts: Any,
    ) -> None:
        """Publish `dossier.dossier.<what>` with the read-model fields and a timeline entry."""
        self.state.step += 1
        self.state.last_event = self.state.step
        self.steps_this_run += 1
        self.changed = True
        event = Event(
            id=f"{self.opening.dossier_id}:{self.state.step}",
            type=f"dossier.dossier.{what}",
            occurred_at=workflow.now(),
            data={
                **facts,
                "dossier_id": self.opening.dossier_id,
                "reference": self.opening.reference,
                "seq": self.state.step,
                "set": {**(extra or {}), **self._set_fields()},
                "timeline": timeline,
            },
        )
        self._prune()
        self.pending.append(
            asyncio.ensure_future(
                workflow.start_activity(
                    "publish_dossier_event",
                    event,
                    start_to_close_timeout=QUICK,
                    retry_policy=RETRY_FOREVER,
                )
            )
        )

    def _mail(self, template: str, context: dict[str, Any], auto: bool = False) -> None:
        o = self.opening
        self.state.step += 1
        order = MailOrder(
            dossier_id=o.dossier_id,
            reference=o.reference,
            step=self.state.step,
            template=template,
            to=o.requester_email,
            context={
                "reference": o.reference,
                "subject": o.subject,
                "requester_name": o.requester_name,
                "software": o.software,
                "first_response_due": o.first_response_due.isoformat(),
                **context,
            },
            thread=list(self.state.thread),
            auto=auto,
        )

        async def send() -> None:
            mid = await workflow.execute_activity(
                "send_dossier_mail",
                order,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RETRY_FOREVER,
                result_type=str,
            )
            self.state.thread.append(mid)

        self.pending.append(asyncio.create_task(send()))

    def _notice(self, audience: str, kind: str, subject: str, text: str) -> None:
        self.state.step += 1
        notice = StaffNotice(
            dossier_id=self.opening.dossier_id,
            reference=self.opening.reference,
            step=self.state.step,
            audience=audience,
            kind=kind,
            subject=subject,
            text=text,
            technician_id=self.state.technician_id,
        )
        self.pending.append(
            asyncio.ensure_future(
                workflow.start_activity(
                    "notify_staff",
                    notice,
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=RETRY_FOREVER,
                )
            )
        )

    def _prune(self) -> None:
        self.pending = [t for t in self.pending if not t.done()]

    def _entry(
        self,
        kind: str,
        text: str,
        actor: Actor | None = None,
        visibility: str = "internal",
        *,
        author: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "kind": kind,
            "visibility": visibility,
            "author": author or (actor.name if actor else None),
            "text": text,
            "data": data or {},
        }

    def _fmt(self, at: datetime) -> str:
        local = at.astimezone(self.calendar.tz)
        return f"{domain.WEEKDAYS[local.weekday()]} {local:%d/%m/%Y à %H:%M}"

    def _fmt_iso(self, value: str) -> str:
        try:
            return self._fmt(datetime.fromisoformat(value))
        except (TypeError, ValueError):
            return value
