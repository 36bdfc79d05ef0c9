"""The dossier workflow's side effects: events for the read model, mails to the customer,
notices to staff — activities started without blocking a command, each idempotent per dossier
step. Imported by workflows/dossier.py (passed through the sandbox: it runs inside the
workflow, through the workflow API only).

Failure policy (docs/decisions/0013): an effect is retried a bounded number of times (a
dependency that is down is waited for inside the attempt, heartbeating, without using one
up: assistance/activity_failures.py); an effect that fails for good is parked by the worker,
recorded on the dossier (`dossier.dossier.effect_failed`, a timeline entry for staff) and
never fails the workflow. An administrator's retry comes back as the `retry_effect` signal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from assistance import french
from assistance.business_time import BusinessCalendar
from assistance.events import Event
from workflows.types import (
    Actor,
    DossierOpening,
    DossierPolicy,
    DossierState,
    MailOrder,
    StaffNotice,
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
EFFECT_TIMEOUTS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(hours=1),
    "heartbeat_timeout": timedelta(minutes=1),
    "retry_policy": EFFECT_RETRY,
}
EFFECT_LABELS = {
    "publish_dossier_event": "mise à jour de l'historique du dossier",
    "send_dossier_mail": "mail au client",
    "notify_staff": "avis à l'équipe",
    "hand_over": "transmission au service concerné",
}
RETRYABLE_EFFECTS = frozenset(EFFECT_LABELS)


class DossierEffects:
    """What DossierWorkflow holds, and how it tells the world."""

    opening: DossierOpening
    policy: DossierPolicy
    state: DossierState
    calendar: BusinessCalendar
    lock: asyncio.Lock
    changed: bool
    pending: list[asyncio.Task[Any]]
    steps_this_run: int

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
        handle = workflow.start_activity("publish_dossier_event", event, **EFFECT_TIMEOUTS)
        # the record of a failed effect is not recorded again if it fails itself
        tell = what != "effect_failed"
        self.pending.append(
            asyncio.ensure_future(self._guarded("publish_dossier_event", handle, tell))
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
            mid = await self._guarded(
                "send_dossier_mail",
                workflow.execute_activity(
                    "send_dossier_mail", order, result_type=str, **EFFECT_TIMEOUTS
                ),
            )
            if mid:
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
        handle = workflow.start_activity("notify_staff", notice, **EFFECT_TIMEOUTS)
        self.pending.append(asyncio.ensure_future(self._guarded("notify_staff", handle)))

    async def _guarded(self, activity: str, effect: Awaitable[Any], tell: bool = True) -> Any:
        """Await a side effect; if it fails for good, record it on the dossier instead of
        failing the workflow (the worker parked it and administrators are told)."""
        try:
            return await effect
        except ActivityError as error:
            if tell:
                self._effect_failed(activity, error)
            return None

    def _effect_failed(self, activity: str, error: ActivityError) -> None:
        s = self.state
        cause = error.cause
        failed = s.details.get("failed_effects", 0) + 1
        s.details["failed_effects"] = failed
        what = EFFECT_LABELS.get(activity, "action automatique")
        self._emit(
            "effect_failed",
            timeline=self._entry(
                "effect_failed",
                f"Échec définitif : {what}. Les administrateurs sont prévenus ; l'action "
                "sera relancée depuis le travail bloqué une fois la cause réparée.",
                author="système",
                data={"effect": activity, "error": str(cause or error)[:500]},
            ),
            effect=activity,
        )

    def _rerun_effect(self, activity: str, args: list[Any]) -> None:
        """An administrator's retry of a parked effect (the `retry_effect` signal)."""

        async def rerun() -> None:
            result = await self._guarded(
                activity, workflow.execute_activity(activity, args=args, **EFFECT_TIMEOUTS)
            )
            if activity == "send_dossier_mail" and isinstance(result, str):
                self.state.thread.append(result)
            self.changed = True

        self.pending.append(asyncio.create_task(rerun()))

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
        return french.moment_short(at, self.calendar.tz)

    def _fmt_iso(self, value: str) -> str:
        try:
            return self._fmt(datetime.fromisoformat(value))
        except (TypeError, ValueError):
            return value
