"""The dossier process as a pure state machine (R2–R10).

    apply(state, message, now, ctx) -> Outcome(state, effects, changed)

`message` is a command (`Command(name, cmd)`: take, release, diagnose, respond, note,
request_information, screen_share, record_workaround, close, confirm, reopen), a fact (a
customer's message, a service's event, a deadline falling due, the answer of an effect) or the
opening itself. The rules (services/dossier/domain.py `check_*`) guard every command: a refused
command raises `Refused` (its code is the rule's) and changes nothing. The effects are plain
data, in the order they must happen: publish an event, mail the customer, notify staff, hand
over to a service. The deadline that follows a state is `next_deadline(state, ctx)`; when it
falls due, `apply(state, Timer..., now, ctx)` says what happens (R2 reminders and escalation,
R3 warning and breach).

Nothing here reads the clock, draws a random number, or knows Temporal: the workflow
(workflows/dossier.py) feeds it and carries out its effects; the same inputs give the same
outputs. What changed over time (`workflow.patched`) comes in as `ctx.features`: the names of
the changes this dossier runs with. A change asked about in the middle of a step (the
workflow's `patched` marker) must come between the same effects as it always did, so the
workflow may carry out each effect as it is produced (`ctx.carry_out`); the outcome lists
them all the same.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from assistance import french
from assistance.business_time import BusinessCalendar
from assistance.commitment import Commitment
from assistance.events import Event
from services.dossier import domain
from services.dossier.domain import Refused
from services.dossier.state import (
    Actor,
    ActorCmd,
    CloseCmd,
    Command,
    Context,
    CustomerMessage,
    Deadline,
    DiagnosisCmd,
    DossierState,
    DossierView,
    Effect,
    EffectFailed,
    HandOver,
    HandOverAnswered,
    HandOverTo,
    MailOrder,
    MailSent,
    Message,
    MessageCmd,
    NotifyStaff,
    Open,
    Outcome,
    Publish,
    ReopenCmd,
    ScreenShareCmd,
    SendMail,
    StaffNotice,
    Timer,
    WorkaroundCmd,
)

# --- the changes a running dossier may or may not have (workflow.patched ids) -------------
# R2: after an escalation the reminder cycle starts again, waiting for the customer included.
FOLLOW_UP_CYCLES = "follow-up-cycles"
# R3: handing an advanced-usage or evolution request over tells the customer at once.
HANDOVER_ANSWERS = "handover-answers-customer"
# Facts reaching a closed dossier used to move it out of "closed" without a reopening.
LATE_FACTS_KEEP_CLOSED = "late-facts-keep-closed"
# A resolution mailed to the customer did not count as a response: a dossier resolved or closed
# without a separate answer kept first_responded_at empty (and its R3 timers live).
RESOLUTION_ANSWERS = "resolution-is-first-response"
# Asked by the workflow, not the process: an update id an earlier run applied (carried over by
# continue-as-new) answers the dossier as it is instead of acting again (docs/decisions/0012).
UPDATE_IDS_CARRIED = "update-ids-carried"
# Asked by the workflow: a timer is started only when the next deadline moved (a command that
# leaves it where it was keeps the running timer; before, each one cancelled and restarted it).
TIMERS_KEPT = "timers-kept"
# Asked by the workflow when a command or message reaches a fresh dossier before its opening
# (both in its first workflow task): the dossier is opened first.
OPEN_FIRST = "open-before-commands"
# Asked by the workflow where the first effect of a step is carried out: the step's events,
# mails and notices go to one activity writing them to the outbox in one transaction (hand-overs
# stay their own activity) instead of one activity each (docs/decisions/0022).
STEP_RECORDS = "effects-recorded-per-step"
# Asked by the workflow where a step is recorded: its record is first written by a local
# activity (in the workflow task, no task queue round trip, no history event of its own but a
# marker), and only if that fails by the activity with the whole failure policy (issue 15).
LOCAL_RECORDS = "steps-recorded-locally"
FEATURES = frozenset(
    {
        LOCAL_RECORDS,
        FOLLOW_UP_CYCLES,
        HANDOVER_ANSWERS,
        LATE_FACTS_KEEP_CLOSED,
        RESOLUTION_ANSWERS,
        STEP_RECORDS,
        UPDATE_IDS_CARRIED,
        TIMERS_KEPT,
        OPEN_FIRST,
    }
)
# Every change above at once: the workflow asks this one where it first asks any of them, once
# per run. A dossier started on code that has them all records one marker (and the one
# `TemporalChangeVersion` upsert the SDK adds to each marker) instead of one per change; one
# started before, replayed, finds no such marker and asks each change where it always did
# (docs/workflow-versioning.md, "Bundles").
BUNDLE_2026_12 = "changes-until-2026-12"
BUNDLES = {BUNDLE_2026_12: FEATURES}

SEEN_EVENTS_KEPT = 500
STATUSES = frozenset({*domain.OPEN, "closed"})
EFFECT_LABELS = {
    "publish_dossier_event": "mise à jour de l'historique du dossier",
    "send_dossier_mail": "mail au client",
    "notify_staff": "avis à l'équipe",
    "hand_over": "transmission au service concerné",
    "record_dossier_step": "enregistrement d'une étape du dossier (historique, mails, avis)",
}


# --- the machine ---------------------------------------------------------------------------


def apply(state: DossierState, message: Message, now: datetime, ctx: Context) -> Outcome:
    """The new state and the effects, in order. Raises `Refused` for a refused command."""
    if isinstance(message, Command):
        check(state, message)
    step = _Step(state, now, ctx)
    match message:
        case Open():
            step.open()
        case Command():
            step.command(message)
        case CustomerMessage():
            step.customer_message(message)
        case Event():
            step.service_event(message)
        case Timer():
            step.fire(message)
        case MailSent(message_id=mid):
            step.s.thread.append(mid)
        case HandOverAnswered(service=service, answer=answer):
            step.s.details[f"{service}_ticket"] = answer
            step.changed = True
        case EffectFailed(activity=activity, error=error):
            step.effect_failed(activity, error)
    return Outcome(step.s, step.effects, step.changed)


def check(state: DossierState, command: Command) -> None:
    """The rules a command must pass (raise `Refused`); the workflow's update validators."""
    c = command.cmd
    match command.name, c:
        case "take", ActorCmd():
            domain.check_take(state, c.actor)
        case "release", ActorCmd():
            domain.check_release(state, c.actor)
        case "diagnose", DiagnosisCmd():
            domain.check_diagnosis(state, c.actor, c.kind, c.context, c.need)
        case "respond", MessageCmd():
            domain.check_response(state, c.actor, c.text)
        case "note", MessageCmd():
            domain.check_note(state, c.actor, c.text)
        case "request_information", MessageCmd():
            domain.check_information_request(state, c.actor, c.text)
        case "screen_share", ScreenShareCmd():
            domain.check_screen_share(state, c.actor)
        case "record_workaround", WorkaroundCmd():
            domain.check_workaround(state, c.actor, c.text, c.none_reason)
        case "close", CloseCmd():
            domain.check_close(state, c.actor, c.resolution)
        case "confirm", ActorCmd():
            domain.check_confirm(state, c.actor)
        case "reopen", ReopenCmd():
            domain.check_reopen(state, c.actor, c.reason)
        case _:
            raise Refused("unknown_command", f"Commande inconnue : {command.name!r}.")


COMMANDS = (
    "take",
    "release",
    "diagnose",
    "respond",
    "note",
    "request_information",
    "screen_share",
    "record_workaround",
    "close",
    "confirm",
    "reopen",
)


def next_deadline(state: DossierState, ctx: Context) -> Deadline | None:
    """The live timer of an open dossier (R2, R3): the earliest of what is due next."""
    s, p, o, cal = state, ctx.policy, ctx.opening, ctx.calendar

    def bt(start: datetime, hours: float) -> datetime:
        return cal.add_business_time(start, timedelta(hours=hours))

    candidates: list[Deadline] = []
    if s.first_responded_at is None and s.status != "closed":
        due = o.first_response_due
        if not s.warned:
            at = commitment(ctx).warning_at(cal, o.received_at, due)
            candidates.append(Deadline(at, Timer.warn_first_response))
        elif not s.breached:
            candidates.append(Deadline(due, Timer.breach_first_response))
    since = s.waiting_since or s.last_activity_at or o.received_at
    cycles = FOLLOW_UP_CYCLES in ctx.features

    def follow_up(remind_at: datetime, escalate: bool) -> None:
        """R2: remind the technician, then escalate to an admin if still nothing happens."""
        if not s.reminded:
            candidates.append(Deadline(remind_at, Timer.remind_technician))
        elif escalate and not s.escalated:
            candidates.append(Deadline(bt(remind_at, p.escalation_hours), Timer.escalate))

    if s.status == "waiting_customer":
        if not s.customer_reminded:
            candidates.append(Deadline(bt(since, p.customer_reminder_hours), Timer.remind_customer))
        elif s.cycle_from is not None:
            follow_up(bt(s.cycle_from, p.reminder_hours), cycles)
        else:
            follow_up(bt(since, 2 * p.customer_reminder_hours), cycles)
    elif s.status == "resolved":
        at = bt(s.resolved_at or since, p.confirmation_hours)
        candidates.append(Deadline(at, Timer.close_unanswered))
    elif s.status in ("new", "in_progress", "waiting_service") and (
        s.first_responded_at is not None or s.breached
    ):
        # before the first response, the R3 warning and breach are the live timer
        last = max(s.last_activity_at or o.received_at, s.breached_at or since)
        if s.cycle_from is not None:
            last = max(last, s.cycle_from)
        quiet = p.service_reminder_hours if s.status == "waiting_service" else p.reminder_hours
        follow_up(bt(last, quiet), True)
    if not candidates:
        return None
    return min(candidates, key=lambda c: c.at)


def reopen_until(state: DossierState, ctx: Context, now: datetime) -> datetime:
    """A closed dossier can be reopened by a reply until then (R10)."""
    return (state.closed_at or now) + timedelta(days=ctx.policy.reopen_window_days)


def view(state: DossierState, ctx: Context) -> DossierView:
    s, o = state, ctx.opening
    return DossierView(
        dossier_id=o.dossier_id,
        reference=o.reference,
        status=s.status,
        kind=s.kind,
        technician_id=s.technician_id,
        technician_name=s.technician_name,
        first_response_due=o.first_response_due,
        first_responded_at=s.first_responded_at,
        closed_at=s.closed_at,
        resolution=s.resolution,
        waiting_for=s.waiting_for,
        seq=s.last_event,
        details=dict(s.details),
    )


def fmt(calendar: BusinessCalendar, at: datetime) -> str:
    return french.moment_short(at, calendar.tz)


def commitment(ctx: Context) -> Commitment:
    """R3 as the dossier was opened under it (assistance/commitment.py)."""
    return Commitment(ctx.policy.first_response_hours, ctx.policy.warning_fraction)


def entry(
    kind: str,
    text: str,
    actor: Actor | None = None,
    visibility: str = "internal",
    *,
    author: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A timeline entry of the dossier."""
    return {
        "kind": kind,
        "visibility": visibility,
        "author": author or (actor.name if actor else None),
        "text": text,
        "data": data or {},
    }


class _Step:
    """One message applied to a copy of the state, the effects collected in order."""

    def __init__(self, state: DossierState, now: datetime, ctx: Context) -> None:
        self.s = copy.deepcopy(state)
        self.now = now
        self.ctx = ctx
        self.o = ctx.opening
        self.p = ctx.policy
        self.effects: list[Effect] = []
        self.changed = False

    # --- effects -----------------------------------------------------------------------------

    def _produce(self, effect: Effect) -> None:
        self.effects.append(effect)
        if self.ctx.carry_out is not None:
            self.ctx.carry_out(effect)

    def _set_fields(self) -> dict[str, Any]:
        s = self.s
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
        s = self.s
        s.step += 1
        s.last_event = s.step
        self.changed = True
        data = {
            **facts,
            "dossier_id": self.o.dossier_id,
            "reference": self.o.reference,
            "seq": s.step,
            "set": {**(extra or {}), **self._set_fields()},
            "timeline": timeline,
        }
        event = Event(
            id=f"{self.o.dossier_id}:{s.step}",
            type=f"dossier.dossier.{what}",
            occurred_at=self.now,
            data=copy.deepcopy(data),  # as it is now, whatever the state becomes
        )
        self._produce(Publish(event))

    def _mail(self, template: str, context: dict[str, Any], auto: bool = False) -> None:
        o, s = self.o, self.s
        s.step += 1
        order = MailOrder(
            dossier_id=o.dossier_id,
            reference=o.reference,
            step=s.step,
            template=template,
            to=o.requester_email,
            context=copy.deepcopy(
                {
                    "reference": o.reference,
                    "subject": o.subject,
                    "requester_name": o.requester_name,
                    "software": o.software,
                    "first_response_due": o.first_response_due.isoformat(),
                    **context,
                }
            ),
            thread=list(s.thread),
            auto=auto,
        )
        self._produce(SendMail(order))

    def _notice(self, audience: str, kind: str, subject: str, text: str) -> None:
        s = self.s
        s.step += 1
        notice = StaffNotice(
            dossier_id=self.o.dossier_id,
            reference=self.o.reference,
            step=s.step,
            audience=audience,
            kind=kind,
            subject=subject,
            text=text,
            technician_id=s.technician_id,
        )
        self._produce(NotifyStaff(notice))

    def _fmt(self, at: datetime) -> str:
        return fmt(self.ctx.calendar, at)

    def _fmt_iso(self, value: str) -> str:
        try:
            return self._fmt(datetime.fromisoformat(value))
        except (TypeError, ValueError):
            return value

    def _bt(self, start: datetime, hours: float) -> datetime:
        return self.ctx.calendar.add_business_time(start, timedelta(hours=hours))

    # --- opening -----------------------------------------------------------------------------

    def open(self) -> None:
        o, s = self.o, self.s
        s.last_activity_at = o.received_at
        s.details["weekend_deposit"] = domain.is_weekend_deposit(self.ctx.calendar, o.received_at)
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
            timeline=entry(
                "opened",
                commitment(self.ctx).opened_text(self._fmt(o.first_response_due)),
                visibility="customer",
            ),
        )
        self._mail(
            "acknowledgement",
            {
                "first_response_due": o.first_response_due.isoformat(),
                "first_response_delay": commitment(self.ctx).delay_text(),
            },
            auto=True,
        )

    # --- deadlines: R2 follow-through, R3 first response -------------------------------------

    def fire(self, timer: Timer) -> None:
        {
            Timer.warn_first_response: self._warn_first_response,
            Timer.breach_first_response: self._breach_first_response,
            Timer.remind_technician: self._remind_technician,
            Timer.escalate: self._escalate,
            Timer.remind_customer: self._remind_customer,
            Timer.close_unanswered: self._close_unanswered,
        }[timer]()

    def _warn_first_response(self) -> None:
        self.s.warned = True
        due = self.o.first_response_due
        c = commitment(self.ctx)
        self._notice(
            "technician" if self.s.technician_id else "team",
            "first_response_warning",
            c.warning_subject(self._fmt(due)),
            c.warning_text(self.o.reference, self._fmt(due)),
        )
        self._emit(
            "first_response_warned",
            timeline=entry("first_response_warning", c.warning_entry()),
        )

    def _breach_first_response(self) -> None:
        s, o = self.s, self.o
        s.breached, s.breached_at = True, self.now
        s.details["first_response_breached_at"] = self.now.isoformat()
        c = commitment(self.ctx)
        self._notice(
            "admins",
            "first_response_breach",
            c.breach_subject(o.reference),
            c.breach_text(o.reference, o.software, self._fmt(o.first_response_due)),
        )
        self._emit(
            "first_response_breached",
            timeline=entry("first_response_breach", "Engagement de première réponse dépassé."),
            breach={
                "due": o.first_response_due.isoformat(),
                "software": o.software,
                "technician_id": s.technician_id,
            },
        )

    def _remind_technician(self) -> None:
        s = self.s
        s.reminded = True
        why = {
            "waiting_customer": "le client n'a toujours pas répondu",
            "waiting_service": "le service concerné n'a pas donné de nouvelles",
        }.get(s.status, "aucune action depuis un moment")
        self._notice(
            "technician" if s.technician_id else "team",
            "reminder",
            f"Relance : dossier {self.o.reference}",
            f"Le dossier {self.o.reference} attend une action : {why}.",
        )
        self._emit("reminded", timeline=entry("reminder", f"Relance du technicien : {why}."))

    def _escalate(self) -> None:
        self.s.escalated = True
        self._notice(
            "admins",
            "escalation",
            f"Escalade : dossier {self.o.reference} sans suite",
            f"Le dossier {self.o.reference} est resté sans action malgré une relance.",
        )
        self._emit("escalated", timeline=entry("escalation", "Dossier escaladé."))
        if FOLLOW_UP_CYCLES in self.ctx.features:
            # never silent: a new reminder cycle starts from the escalation
            s = self.s
            s.reminded = s.escalated = False
            s.cycle_from = self.now

    def _remind_customer(self) -> None:
        self.s.customer_reminded = True
        self._mail(
            "customer_reminder", {"text": self.s.details.get("information_request")}, auto=True
        )
        self._emit(
            "customer_reminded",
            timeline=entry(
                "customer_reminder", "Relance envoyée au client.", visibility="customer"
            ),
        )

    def _close_unanswered(self) -> None:
        resolution = self.s.details.get("proposed_resolution") or "Résolu."
        self._close(resolution, by="système", mail=True)

    # --- commands ----------------------------------------------------------------------------

    def command(self, command: Command) -> None:
        getattr(self, f"_cmd_{command.name}")(command.cmd)

    def _cmd_take(self, cmd: ActorCmd) -> None:
        s = self.s
        text = f"Pris en charge par {cmd.actor.name}."
        if s.technician_id is not None:  # an admin's take-over, explicit at the API (issue 13)
            text = f"Repris par {cmd.actor.name} (suivi jusque-là par {s.technician_name})."
        s.technician_id, s.technician_name = cmd.actor.user_id, cmd.actor.name
        if s.status == "new":
            s.status = "in_progress"
        self._touch()
        self._emit("taken", timeline=entry("taken", text, cmd.actor, "customer"))

    def _cmd_release(self, cmd: ActorCmd) -> None:
        s = self.s
        s.technician_id = s.technician_name = None
        if s.status == "in_progress":
            s.status = "new"
        self._touch()
        self._emit(
            "released",
            timeline=entry("released", f"{cmd.actor.name} rend le dossier à la file.", cmd.actor),
        )

    def _cmd_diagnose(self, cmd: DiagnosisCmd) -> None:
        s = self.s
        s.kind, s.context, s.need, s.version = cmd.kind, cmd.context, cmd.need, cmd.version
        self._touch()
        text = f"Diagnostic : {domain.KIND_LABELS[cmd.kind]}."
        if cmd.kind == "usage":
            # R6: resolved within the hour of the request
            target = self._bt(self.o.received_at, self.p.usage_target_hours)
            s.details["usage_target"] = target.isoformat()
        self._emit(
            "diagnosed",
            timeline=entry("diagnosed", text, cmd.actor, "customer", data={"kind": cmd.kind}),
            internal={"context": cmd.context, "need": cmd.need},
        )
        self._emit(
            "noted",
            timeline=entry(
                "diagnosis", f"Contexte : {cmd.context}\nBesoin : {cmd.need}", cmd.actor
            ),
        )
        if cmd.kind in ("advanced_usage", "evolution"):
            if HANDOVER_ANSWERS in self.ctx.features:
                self._tell_handover(cmd.kind)
            self._hand_over()

    def _cmd_respond(self, cmd: MessageCmd) -> None:
        if cmd.actor.role == "customer":
            self.customer_said(
                CustomerMessage(
                    text=cmd.text,
                    author_email="",
                    author_name=cmd.actor.name,
                    attachments=cmd.attachments,
                )
            )
            return
        self._first_response()
        self._touch()
        self._emit(
            "responded",
            timeline=entry(
                "response",
                cmd.text,
                cmd.actor,
                "customer",
                data={"attachments": cmd.attachments} if cmd.attachments else None,
            ),
        )
        self._mail("response", {"text": cmd.text, "author": cmd.actor.name})

    def _cmd_note(self, cmd: MessageCmd) -> None:
        self._emit("noted", timeline=entry("note", cmd.text, cmd.actor))

    def _cmd_request_information(self, cmd: MessageCmd) -> None:
        s = self.s
        self._first_response()
        self._touch()
        s.details["status_before_wait"] = s.status
        s.status, s.waiting_for, s.waiting_since = "waiting_customer", "customer", self.now
        s.customer_reminded = False
        s.details["information_request"] = cmd.text
        self._emit(
            "information_requested",
            timeline=entry("information_request", cmd.text, cmd.actor, "customer"),
        )
        self._mail("information_request", {"text": cmd.text, "author": cmd.actor.name})

    def _cmd_screen_share(self, cmd: ScreenShareCmd) -> None:
        self._first_response()
        self._touch()
        self.s.details["screen_share"] = cmd.link
        self._emit(
            "screen_share_opened",
            timeline=entry(
                "screen_share",
                "Session de partage d'écran proposée.",
                cmd.actor,
                "customer",
                data={"link": cmd.link},
            ),
        )
        self._mail("screen_share", {"link": cmd.link, "author": cmd.actor.name})

    def _cmd_record_workaround(self, cmd: WorkaroundCmd) -> None:
        s = self.s
        self._touch()
        if cmd.text:
            s.workaround = cmd.text
            s.details["workaround"] = cmd.text
            self._first_response()
            self._emit(
                "workaround_recorded",
                timeline=entry("workaround", cmd.text, cmd.actor, "customer"),
                workaround=cmd.text,
            )
            self._mail("workaround", {"text": cmd.text, "author": cmd.actor.name})
        else:
            s.workaround_none_reason = cmd.none_reason
            s.details["workaround_none_reason"] = cmd.none_reason
            self._emit(
                "workaround_unavailable",
                timeline=entry(
                    "workaround", f"Pas de contournement : {cmd.none_reason}", cmd.actor
                ),
            )
        self._hand_over()  # R8: the developers only after the workaround gate

    def _cmd_close(self, cmd: CloseCmd) -> None:
        self._close(cmd.resolution, by=cmd.actor.name, actor=cmd.actor, mail=True)

    def _cmd_confirm(self, cmd: ActorCmd) -> None:
        resolution = self.s.details.get("proposed_resolution") or "Résolu."
        self._close(resolution, by=cmd.actor.name, actor=cmd.actor, mail=True)

    def _cmd_reopen(self, cmd: ReopenCmd) -> None:
        self._reopen(cmd.reason, cmd.actor)

    # --- facts -------------------------------------------------------------------------------

    def customer_message(self, msg: CustomerMessage) -> None:
        if msg.message_id and msg.message_id in self.s.thread:
            return  # the same mail delivered twice joins once
        if self.s.status == "closed":
            self._reopen("Nouveau message du client.", None)
        self.customer_said(msg)

    def customer_said(self, msg: CustomerMessage) -> None:
        s = self.s
        if msg.message_id:
            s.thread.append(msg.message_id)
        if s.status in ("waiting_customer", "resolved"):
            # a reply resumes the follow-through; a reply to a resolution reopens the work
            s.status = "in_progress" if s.technician_id else "new"
            s.waiting_for = s.waiting_since = None
        self._touch()
        self._emit(
            "customer_replied",
            timeline=entry(
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
                f"Réponse du client : {self.o.reference}",
                msg.text[:2000],
            )

    def service_event(self, event: Event) -> None:
        s = self.s
        if event.id in s.seen_events:
            return  # delivered twice: applied once
        s.seen_events = [*s.seen_events, event.id][-SEEN_EVENTS_KEPT:]
        d, kind = event.data, event.type
        if s.status == "closed" and LATE_FACTS_KEEP_CLOSED in self.ctx.features:
            self._on_late_fact(kind, d)
            return
        self._touch()
        if kind in ("training.appointment.booked", "training.appointment.rescheduled"):
            s.details["training"] = d
            self._set_waiting("training")
            when = d.get("starts_at", "")
            self._emit(
                "training_booked",
                timeline=entry(
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
                timeline=entry(
                    "training",
                    "Aucun créneau de formation dans les délais : responsable formation alerté.",
                    data=d,
                ),
            )
        elif kind == "training.appointment.cancelled":
            s.details["training"] = d
            self._emit(
                "training_cancelled",
                timeline=entry(
                    "training", "Rendez-vous de formation annulé.", visibility="customer", data=d
                ),
            )
        elif kind == "training.appointment.held":
            s.details["training"] = d
            self._resolve("Formation effectuée : " + (d.get("notes") or "sujet traité."))
        elif kind == "training.appointment.missed":
            self._emit(
                "training_missed",
                timeline=entry(
                    "training",
                    "Rendez-vous manqué : un nouveau créneau est recherché.",
                    visibility="customer",
                    data=d,
                ),
            )
            self._hand_over()
        elif kind.startswith("bugs.bug."):
            self._on_bug_event(kind.removeprefix("bugs.bug."), d)
        elif kind.startswith("evolutions.request."):
            self._on_evolution_event(kind.removeprefix("evolutions.request."), d)

    def _on_bug_event(self, what: str, d: dict[str, Any]) -> None:
        s = self.s
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
            s.status, s.waiting_for, s.waiting_since = "waiting_customer", "customer", self.now
            s.details["information_request"] = questions
            self._emit(
                "information_requested",
                timeline=entry(
                    "information_request", f"Bug non reproduit : {questions}", visibility="customer"
                ),
            )
            self._mail("information_request", {"text": questions})
            self._notice(
                "technician",
                "bug_not_reproducible",
                f"Bug non reproduit : {self.o.reference}",
                questions,
            )
        elif what in labels:
            self._set_waiting("bug_fix")
            self._emit(
                f"bug_{what}",
                timeline=entry(
                    "bug", labels[what], visibility="customer", data={"bug_id": d.get("bug_id")}
                ),
            )

    def _on_evolution_event(self, what: str, d: dict[str, Any]) -> None:
        s = self.s
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
            self._close(resolution, by="chef de produit", mail=False)
        else:
            self._set_waiting("evolution_decision")
            self._emit(
                f"evolution_{what}",
                timeline=entry(
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
        s = self.s
        if kind.startswith("bugs.bug."):
            what = kind.removeprefix("bugs.bug.")
            s.details["bug"] = {**s.details.get("bug", {}), "id": d.get("bug_id"), "state": what}
            if what == "released":
                version = d.get("version", "")
                s.details["bug"]["fixed_in"] = version
                self._mail("fix_released", {"version": version})
                self._emit(
                    "bug_released",
                    timeline=entry(
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
                timeline=entry(
                    "evolution", f"Demande d'évolution {decision}.", visibility="customer", data=d
                ),
            )

    def effect_failed(self, activity: str, error: str) -> None:
        s = self.s
        failed = s.details.get("failed_effects", 0) + 1
        s.details["failed_effects"] = failed
        what = EFFECT_LABELS.get(activity, "action automatique")
        self._emit(
            "effect_failed",
            timeline=entry(
                "effect_failed",
                f"Échec définitif : {what}. Les administrateurs sont prévenus ; l'action "
                "sera relancée depuis le travail bloqué une fois la cause réparée.",
                author="système",
                data={"effect": activity, "error": error[:500]},
            ),
            effect=activity,
        )

    # --- shared steps ------------------------------------------------------------------------

    def _set_waiting(self, what: str) -> None:
        s = self.s
        s.status, s.waiting_for, s.waiting_since = "waiting_service", what, None

    def _resolve(self, resolution: str, mail: bool = True) -> None:
        """A proposed resolution: the customer confirms, or it closes after a delay."""
        s = self.s
        s.status, s.waiting_for, s.resolved_at = "resolved", "customer", self.now
        s.details["proposed_resolution"] = resolution
        if mail:
            self._resolution_answers()
        self._emit("resolved", timeline=entry("resolved", resolution, visibility="customer"))
        if mail:
            self._mail("resolved", {"resolution": resolution})

    def _close(self, resolution: str, *, by: str, actor: Actor | None = None, mail: bool) -> None:
        s, now = self.s, self.now
        s.status, s.waiting_for, s.closed_at, s.resolution = "closed", None, now, resolution
        if "usage_target" in s.details:
            s.details["usage_target_met"] = now <= datetime.fromisoformat(s.details["usage_target"])
        if mail:
            self._resolution_answers()
        self._emit("closed", timeline=entry("closed", resolution, actor, "customer", author=by))
        if mail:
            self._mail("closure", {"resolution": resolution})

    def _reopen(self, reason: str, actor: Actor | None) -> None:
        s = self.s
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
            timeline=entry(
                "reopened", reason, actor, "customer", author=actor.name if actor else "client"
            ),
        )
        self._mail("reopened", {"reason": reason})

    def _first_response(self) -> None:
        """R3: the first response to the customer stops the clock."""
        if self.s.first_responded_at is None:
            self.s.first_responded_at = self.now

    def _resolution_answers(self) -> None:
        """R3: the mail carrying the resolution answers the customer; if nothing did before,
        it is the first response (else /reports/activity shows the dossier pending for ever)."""
        if self.s.first_responded_at is None and RESOLUTION_ANSWERS in self.ctx.features:
            self._first_response()

    def _touch(self) -> None:
        """R2: activity restarts the follow-through timer."""
        s = self.s
        s.last_activity_at = self.now
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
        """R7–R9: ask the owning service over NATS; its facts come back as events."""
        s, o = self.s, self.o
        service = {"advanced_usage": "training", "bug": "bugs", "evolution": "evolutions"}.get(
            s.kind or ""
        )
        if service is None:
            # a fact meant for another branch (e.g. a missed training on a dossier since
            # classified otherwise): recorded for the staff, never a crash of the dossier
            self._emit(
                "noted",
                timeline=entry(
                    "note",
                    "Information d'un autre service reçue alors que le dossier n'attend pas "
                    "ce service : aucune suite donnée.",
                ),
            )
            return
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
            timeline=entry(
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
        self._produce(HandOverTo(order))
