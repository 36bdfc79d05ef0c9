"""The dossier workflow's side effects: events for the read model, mails to the customer,
notices to staff — activities started without blocking a command, retried until they succeed,
each idempotent per dossier step. Imported by workflows/dossier.py (passed through the
sandbox: it runs inside the workflow, through the workflow API only)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

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

RETRY_FOREVER = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
QUICK = timedelta(seconds=30)


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
        return french.moment_short(at, self.calendar.tz)

    def _fmt_iso(self, value: str) -> str:
        try:
            return self._fmt(datetime.fromisoformat(value))
        except (TypeError, ValueError):
            return value
