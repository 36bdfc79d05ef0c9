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
training, bugs and evolutions services), retry_effect (an administrator retries a side effect
that had failed for good). Query: view.

What the commands and facts do is in workflows/dossier_steps.py, how the workflow tells the
world (events, mails, staff notices) in workflows/dossier_effects.py; both are passed through
the sandbox, so each workflow run re-imports only this file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from assistance.business_time import BusinessCalendar
    from assistance.commitment import Commitment
    from assistance.events import Event
    from services.dossier import domain
    from services.dossier.domain import Refused
    from workflows.dossier_effects import RETRYABLE_EFFECTS
    from workflows.dossier_steps import DossierSteps
    from workflows.types import (
        CloseCmd,
        CustomerMessage,
        DiagnosisCmd,
        DossierOpening,
        DossierState,
        DossierView,
        MessageCmd,
        ReopenCmd,
        ScreenShareCmd,
        TakeCmd,
        WorkaroundCmd,
    )

SEEN_EVENTS_KEPT = 500
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
class DossierWorkflow(DossierSteps):
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
        self.commitment = Commitment(self.policy.first_response_hours, self.policy.warning_fraction)
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
                self.commitment.opened_text(self._fmt(o.first_response_due)),
                visibility="customer",
            ),
        )
        self._mail(
            "acknowledgement",
            {
                "first_response_due": o.first_response_due.isoformat(),
                "first_response_delay": self.commitment.delay_text(),
            },
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
                    at = self.commitment.warning_at(self.calendar, self.opening.received_at, due)
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
            self.commitment.warning_subject(self._fmt(due)),
            self.commitment.warning_text(self.opening.reference, self._fmt(due)),
        )
        self._emit(
            "first_response_warned",
            timeline=self._entry("first_response_warning", self.commitment.warning_entry()),
        )

    async def _breach_first_response(self) -> None:
        s = self.state
        s.breached, s.breached_at = True, workflow.now()
        s.details["first_response_breached_at"] = workflow.now().isoformat()
        self._notice(
            "admins",
            "first_response_breach",
            self.commitment.breach_subject(self.opening.reference),
            self.commitment.breach_text(
                self.opening.reference,
                self.opening.software,
                self._fmt(self.opening.first_response_due),
            ),
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
            # histories recorded before the explicit take-over replay as they ran
            takeover = cmd.takeover or not workflow.patched("explicit-takeover")
            self._check(domain.check_take, cmd.actor, takeover)
            s = self.state
            text = f"Pris en charge par {cmd.actor.name}."
            if s.technician_id is not None:  # an admin's explicit take-over (issue 13)
                text = f"Repris par {cmd.actor.name} (suivi jusque-là par {s.technician_name})."
            s.technician_id, s.technician_name = cmd.actor.user_id, cmd.actor.name
            if s.status == "new":
                s.status = "in_progress"
            self._touch()
            self._emit(
                "taken",
                timeline=self._entry("taken", text, cmd.actor, "customer"),
            )
            return self.view()

    @take.validator
    def _validate_take(self, cmd: TakeCmd) -> None:
        self._check(domain.check_take, cmd.actor, cmd.takeover)

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

    @workflow.signal
    async def retry_effect(self, order: dict[str, Any]) -> None:
        """An administrator retries a side effect that had failed for good (docs/decisions/0013):
        `{"parked_id", "activity", "args"}`, the arguments as the worker parked them."""
        activity = str(order.get("activity", ""))
        args = order.get("args")
        if activity in RETRYABLE_EFFECTS and isinstance(args, list):
            self._rerun_effect(activity, args)

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
