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

What the commands, facts and deadlines do is decided by the pure state machine
services/dossier/process.py (the rules, the next deadline, the effects in order); this file
only feeds it and carries out its effects as activities (workflows/activities.py), in the
order it gives them: since the patch `effects-recorded-per-step` (docs/decisions/0022), one
activity per step for its events, mails and notices (`record_dossier_step`, written to the
outbox in one transaction), a hand-over its own; before it, one activity per effect. The
process and the rules are imported inside the sandbox like this file; only libraries and
data pass through: the business calendar (and its `holidays`), the R3 commitment and the
French wording (assistance/commitment.py and french.py, pure, scanned like the workflow code),
the pydantic events and the dataclasses of services/dossier/state.py.

Failure policy (docs/decisions/0013): an effect is retried a bounded number of times (a
dependency that is down is waited for inside the attempt, heartbeating, without using one
up: assistance/activity_failures.py); an effect that fails for good is parked by the worker,
recorded on the dossier (`dossier.dossier.effect_failed`, a timeline entry for staff) and
never fails the workflow. An administrator's retry comes back as the `retry_effect` signal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, cast

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

# The package is imported afresh in the sandbox before its data module passes through, so
# the process and the rules below are the sandbox's own modules, under its restrictions.
import services.dossier  # noqa: F401

with workflow.unsafe.imports_passed_through():
    # the kernel's pure libraries the process reads: R3 in one place, French wording
    import assistance.commitment  # noqa: F401
    import assistance.french  # noqa: F401
    from assistance.business_time import BusinessCalendar
    from assistance.events import Event
    from services.dossier.state import (
        ActorCmd,
        CloseCmd,
        Command,
        Context,
        CustomerMessage,
        Deadline,
        DiagnosisCmd,
        DossierOpening,
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
        Publish,
        ReopenCmd,
        ScreenShareCmd,
        SendMail,
        StepRecord,
        WorkaroundCmd,
    )

from services.dossier import process
from services.dossier.domain import Refused
from services.dossier.process import (
    BUNDLE_2026_12,
    BUNDLES,
    EFFECT_LABELS,
    LOCAL_RECORDS,
    OPEN_FIRST,
    STEP_RECORDS,
    TIMERS_KEPT,
    UPDATE_IDS_CARRIED,
)
from workflows.activities import (
    hand_over,
    notify_staff,
    publish_dossier_event,
    record_dossier_step,
    send_dossier_mail,
)

# Bounded: ten attempts over about a quarter of an hour, then the effect is parked and recorded.
EFFECT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=10,
)
# An attempt may wait out an outage of its dependency (heartbeating): long enough for one;
# a worker that dies is noticed by the missing heartbeat.
EFFECT_START_TO_CLOSE = timedelta(hours=1)
EFFECT_HEARTBEAT = timedelta(minutes=1)
EFFECT_TIMEOUTS: dict[str, Any] = {
    "start_to_close_timeout": EFFECT_START_TO_CLOSE,
    "heartbeat_timeout": EFFECT_HEARTBEAT,
    "retry_policy": EFFECT_RETRY,
}
RETRYABLE_EFFECTS = frozenset(EFFECT_LABELS)
BUNDLED = BUNDLES[BUNDLE_2026_12]
# A step's record tried once in the workflow task (LOCAL_RECORDS): a transaction of a few
# milliseconds; anything else (an outage, a refusal) goes to the activity and its policy.
LOCAL_RECORD_TIMEOUT = timedelta(seconds=5)
LOCAL_RECORD_RETRY = RetryPolicy(maximum_attempts=1)
# Update ids carried over by continue-as-new: a client retries within the 24 h the HTTP store
# keeps a key; a dossier takes far fewer commands than this in a day.
UPDATE_IDS_KEPT = 1000


@contextmanager
def _plain_python() -> Iterator[None]:
    """For the business calendar. It asks the `holidays` package for the public holidays of a
    year, and that package imports its countries lazily and translates their names (gettext,
    locale): deterministic, but refused by the sandbox the first time a year is computed in
    a process (a fresh worker, a replay) and the calendar's cache cannot answer."""
    with workflow.unsafe.imports_passed_through(), workflow.unsafe.sandbox_unrestricted():
        yield


class _PlainCalendar:
    """The business calendar as the process sees it, each call made in plain Python."""

    def __init__(self, calendar: BusinessCalendar) -> None:
        self._calendar = calendar
        self.tz = calendar.tz

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._calendar, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with _plain_python():
                return attribute(*args, **kwargs)

        return call


class _Patches:
    """The changes this run goes with: `workflow.patched(name)`, asked where the process asks
    (so the marker lands where it always did). The bundle of every change until 2026-12 is asked
    first, once: a run that has it has them all without a marker each."""

    def __init__(self) -> None:
        self.bundled: bool | None = None

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name in BUNDLED:
            if self.bundled is None:
                self.bundled = workflow.patched(BUNDLE_2026_12)
            if self.bundled:
                return True
        return workflow.patched(name)


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
            calendar = BusinessCalendar.parse(
                self.policy.business_hours, self.policy.closed_days, timezone=self.policy.timezone
            )
        self.ctx = Context(
            opening,
            cast(BusinessCalendar, _PlainCalendar(calendar)),
            features=_Patches(),
            carry_out=self._carry_out,
        )
        self.lock = asyncio.Lock()
        self.changed = False
        self.pending: list[asyncio.Task[Any]] = []
        self.steps_this_run = 0
        # the running timer and the instant it is for (TIMERS_KEPT)
        self.timer: asyncio.Future[None] | None = None
        self.timer_at: datetime | None = None
        # updates applied by the earlier runs (Temporal forgets them at continue-as-new) and
        # by this one, carried to the next run
        self.earlier_updates = frozenset(opening.carried_updates)
        self.update_ids = list(opening.carried_updates)
        # the effects of the step being applied, when they are recorded together (None: the
        # step has produced none yet, so the patch is not asked yet)
        self.step_effects: list[Effect] | None = None
        self.recording = False
        # a command or message that reaches a fresh dossier in its first workflow task runs
        # before `run` (the SDK delivers updates and signals first): it opens the dossier first
        self.opened = not self.fresh

    # --- the process -----------------------------------------------------------------------

    @workflow.run
    async def run(self, opening: DossierOpening) -> str:
        if self.fresh:
            async with self.lock:
                if not self.opened:
                    self._open()
        while True:
            if self.state.status == "closed":
                self._drop_timer()  # a closed dossier waits only for a reopening
                if not await self._wait_for_reopening():
                    break
                continue
            await self._wait_for_change_or_deadline()
            if self._history_is_long():
                await self._settle()
                workflow.continue_as_new(
                    replace(
                        self.opening,
                        carried=self.state,
                        carried_updates=self.update_ids[-UPDATE_IDS_KEPT:],
                    )
                )
        await self._settle()
        return "closed"

    def _open(self) -> None:
        self.opened = True
        self._apply(Open())

    def _open_first(self) -> None:
        """R1–R3 before anything: a dossier is opened (acknowledged, its R3 deadline set) before
        a command or a message is applied to it, whatever order the first workflow task runs
        them in (patch `open-before-commands`; before it, a take arriving with the start could
        be applied to a dossier not yet opened)."""
        if not self.opened and OPEN_FIRST in self.ctx.features:
            self._open()

    def _apply(self, message: Message) -> None:
        """Feed the process and keep its new state; its effects are carried out, in its order,
        as it produces them (`_carry_out`)."""
        self.step_effects = None
        outcome = process.apply(self.state, message, workflow.now(), self.ctx)
        self.state = outcome.state
        if outcome.changed:
            self.changed = True
        effects, self.step_effects = self.step_effects, None
        if self.recording and effects:
            self._record(effects)

    def _carry_out(self, effect: Effect) -> None:
        if self.step_effects is None:
            # the first effect of this step: the patch is asked here, before its first command
            self.step_effects = []
            self.recording = STEP_RECORDS in self.ctx.features
        if self.recording:
            self.step_effects.append(effect)  # carried out together once the step is applied
            return
        self._carry_out_alone(effect)

    def _carry_out_alone(self, effect: Effect) -> None:
        """Before the patch `effects-recorded-per-step`: one activity per effect."""
        match effect:
            case Publish():
                self._publish(effect)
            case SendMail(order=order):
                self.pending.append(asyncio.create_task(self._send(order)))
            case NotifyStaff(notice=notice):
                handle = workflow.start_activity(notify_staff, notice, **EFFECT_TIMEOUTS)
                self.pending.append(asyncio.ensure_future(self._guarded("notify_staff", handle)))
            case HandOverTo(order=order):
                self.pending.append(asyncio.create_task(self._ask(order)))

    async def _wait_for_change_or_deadline(self) -> None:
        deadline = process.next_deadline(self.state, self.ctx)
        self.changed = False
        if TIMERS_KEPT in self.ctx.features:
            if not await self._deadline_reached(deadline):
                return
        elif deadline is None:
            await workflow.wait_condition(lambda: self.changed)
            return
        else:
            wait = deadline.at - workflow.now()
            if wait > timedelta(0):
                try:
                    await workflow.wait_condition(lambda: self.changed, timeout=wait)
                    return
                except TimeoutError:
                    pass
        async with self.lock:
            # the deadline may have been cancelled while we took the lock
            again = process.next_deadline(self.state, self.ctx)
            if again is not None and again.at <= workflow.now():
                self._apply(again.timer)

    async def _deadline_reached(self, deadline: Deadline | None) -> bool:
        """Wait for a change or the deadline (True: the deadline came first). One timer per
        instant: a command that leaves the next deadline where it was keeps the running timer
        instead of cancelling it and starting the same one again."""
        at = deadline.at if deadline is not None else None
        if at != self.timer_at:
            self._drop_timer()
            self.timer_at = at
            wait = at - workflow.now() if at is not None else None
            if wait is not None and wait > timedelta(0):
                self.timer = asyncio.ensure_future(workflow.sleep(wait))
        await workflow.wait_condition(
            lambda: (
                self.changed
                or (self.timer_at is not None and (self.timer is None or self.timer.done()))
            )
        )
        if self.changed:
            return False
        self.timer, self.timer_at = None, None
        return True

    def _drop_timer(self) -> None:
        if self.timer is not None and not self.timer.done():
            self.timer.cancel()
        self.timer, self.timer_at = None, None

    async def _wait_for_reopening(self) -> bool:
        window = process.reopen_until(self.state, self.ctx, workflow.now()) - workflow.now()
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

    # --- effects: activities started without blocking a command ------------------------------

    def _record(self, effects: list[Effect]) -> None:
        """One step's events, mails and notices: one activity writing them to the outbox in one
        transaction (the relay publishes and sends them); its hand-overs after it, each its own
        activity. The Message-IDs of its customer mails join the thread when it is done."""
        events = [e.event for e in effects if isinstance(e, Publish)]
        record = StepRecord(
            dossier_id=self.opening.dossier_id,
            reference=self.opening.reference,
            events=events,
            mails=[e.order for e in effects if isinstance(e, SendMail)],
            notices=[e.notice for e in effects if isinstance(e, NotifyStaff)],
        )
        if record.events or record.mails or record.notices:
            self.steps_this_run += len(events)
            self.pending = [t for t in self.pending if not t.done()]
            # the record of a failed effect is not recorded again if it fails itself
            tell = bool(record.mails or record.notices) or any(
                e.what != "effect_failed" for e in effects if isinstance(e, Publish)
            )
            self.pending.append(asyncio.create_task(self._record_step(record, tell)))
        for effect in effects:
            if isinstance(effect, HandOverTo):
                self.pending.append(asyncio.create_task(self._ask(effect.order)))

    async def _record_step(self, record: StepRecord, tell: bool) -> None:
        message_ids = None
        if LOCAL_RECORDS in self.ctx.features:
            # refused, timed out or failed (a local activity's failure may come unwrapped, not
            # as an ActivityError): the activity below, with the whole policy, decides
            with suppress(FailureError):
                message_ids = await workflow.execute_local_activity(
                    record_dossier_step,
                    record,
                    start_to_close_timeout=LOCAL_RECORD_TIMEOUT,
                    retry_policy=LOCAL_RECORD_RETRY,
                )
        if message_ids is None:
            message_ids = await self._guarded(
                "record_dossier_step",
                workflow.execute_activity(record_dossier_step, record, **EFFECT_TIMEOUTS),
                tell,
            )
        for mid in message_ids or []:
            self._apply(MailSent(mid))

    def _publish(self, effect: Publish) -> None:
        self.steps_this_run += 1
        self.pending = [t for t in self.pending if not t.done()]
        handle = workflow.start_activity(publish_dossier_event, effect.event, **EFFECT_TIMEOUTS)
        # the record of a failed effect is not recorded again if it fails itself
        tell = effect.what != "effect_failed"
        self.pending.append(
            asyncio.ensure_future(self._guarded("publish_dossier_event", handle, tell))
        )

    async def _send(self, order: MailOrder) -> None:
        mid = await self._guarded(
            "send_dossier_mail",
            workflow.execute_activity(send_dossier_mail, order, **EFFECT_TIMEOUTS),
        )
        if mid:
            self._apply(MailSent(mid))

    async def _ask(self, order: HandOver) -> None:
        """R7–R9: the owning service's answer; its facts come back as service_event."""
        answer = await self._guarded(
            "hand_over", workflow.execute_activity(hand_over, order, **EFFECT_TIMEOUTS)
        )
        if answer is None:
            return  # failed for good: recorded on the dossier, parked for an administrator
        async with self.lock:
            self._apply(HandOverAnswered(order.service, answer))

    async def _guarded(self, activity: str, effect: Awaitable[Any], tell: bool = True) -> Any:
        """Await a side effect; if it fails for good, record it on the dossier instead of
        failing the workflow (the worker parked it and administrators are told)."""
        try:
            return await effect
        except ActivityError as error:
            if tell:
                self._apply(EffectFailed(activity, str(error.cause or error)))
            return None

    def _rerun_effect(self, activity: str, args: list[Any]) -> None:
        """An administrator's retry of a parked effect (the `retry_effect` signal): by name,
        with the arguments as the worker parked them."""

        async def rerun() -> None:
            result = await self._guarded(
                activity, workflow.execute_activity(activity, args=args, **EFFECT_TIMEOUTS)
            )
            if activity == "send_dossier_mail" and isinstance(result, str):
                self._apply(MailSent(result))
            if activity == "record_dossier_step" and isinstance(result, list):
                for mid in result:
                    self._apply(MailSent(str(mid)))
            self.changed = True

        self.pending.append(asyncio.create_task(rerun()))

    # --- updates ------------------------------------------------------------------------------

    def _check(self, name: str, cmd: Any) -> None:
        if self._update_id() in self.earlier_updates:
            return  # applied by an earlier run: answered as the dossier is, never refused
        try:
            process.check(self.state, Command(name, cmd))
        except Refused as exc:
            raise _refuse(exc) from None

    async def _command(self, name: str, cmd: Any) -> DossierView:
        update_id = self._update_id()
        async with self.lock:
            self._open_first()
            if update_id in self.earlier_updates and UPDATE_IDS_CARRIED in self.ctx.features:
                # a retry of a command an earlier run applied (its answer was lost and the
                # dossier continued as new since): the dossier as it is, not a second command
                return self.view()
            try:
                self._apply(Command(name, cmd))
            except Refused as exc:
                raise _refuse(exc) from None
            if update_id:
                self.update_ids.append(update_id)
            return self.view()

    @staticmethod
    def _update_id() -> str:
        info = workflow.current_update_info()
        return info.id if info is not None else ""

    @workflow.update
    async def take(self, cmd: ActorCmd) -> DossierView:
        return await self._command("take", cmd)

    @take.validator
    def _validate_take(self, cmd: ActorCmd) -> None:
        self._check("take", cmd)

    @workflow.update
    async def release(self, cmd: ActorCmd) -> DossierView:
        return await self._command("release", cmd)

    @release.validator
    def _validate_release(self, cmd: ActorCmd) -> None:
        self._check("release", cmd)

    @workflow.update
    async def diagnose(self, cmd: DiagnosisCmd) -> DossierView:
        return await self._command("diagnose", cmd)

    @diagnose.validator
    def _validate_diagnose(self, cmd: DiagnosisCmd) -> None:
        self._check("diagnose", cmd)

    @workflow.update
    async def respond(self, cmd: MessageCmd) -> DossierView:
        return await self._command("respond", cmd)

    @respond.validator
    def _validate_respond(self, cmd: MessageCmd) -> None:
        self._check("respond", cmd)

    @workflow.update
    async def note(self, cmd: MessageCmd) -> DossierView:
        return await self._command("note", cmd)

    @note.validator
    def _validate_note(self, cmd: MessageCmd) -> None:
        self._check("note", cmd)

    @workflow.update
    async def request_information(self, cmd: MessageCmd) -> DossierView:
        return await self._command("request_information", cmd)

    @request_information.validator
    def _validate_request_information(self, cmd: MessageCmd) -> None:
        self._check("request_information", cmd)

    @workflow.update
    async def screen_share(self, cmd: ScreenShareCmd) -> DossierView:
        return await self._command("screen_share", cmd)

    @screen_share.validator
    def _validate_screen_share(self, cmd: ScreenShareCmd) -> None:
        self._check("screen_share", cmd)

    @workflow.update
    async def record_workaround(self, cmd: WorkaroundCmd) -> DossierView:
        return await self._command("record_workaround", cmd)

    @record_workaround.validator
    def _validate_workaround(self, cmd: WorkaroundCmd) -> None:
        self._check("record_workaround", cmd)

    @workflow.update
    async def close(self, cmd: CloseCmd) -> DossierView:
        return await self._command("close", cmd)

    @close.validator
    def _validate_close(self, cmd: CloseCmd) -> None:
        self._check("close", cmd)

    @workflow.update
    async def confirm(self, cmd: ActorCmd) -> DossierView:
        return await self._command("confirm", cmd)

    @confirm.validator
    def _validate_confirm(self, cmd: ActorCmd) -> None:
        self._check("confirm", cmd)

    @workflow.update
    async def reopen(self, cmd: ReopenCmd) -> DossierView:
        return await self._command("reopen", cmd)

    @reopen.validator
    def _validate_reopen(self, cmd: ReopenCmd) -> None:
        self._check("reopen", cmd)

    # --- signals ------------------------------------------------------------------------------

    @workflow.signal
    async def customer_message(self, msg: CustomerMessage) -> None:
        async with self.lock:
            self._open_first()
            self._apply(msg)

    @workflow.signal
    async def service_event(self, event: Event) -> None:
        async with self.lock:
            self._open_first()
            self._apply(event)

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
        return process.view(self.state, self.ctx)
