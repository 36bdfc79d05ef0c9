"""The dossier workflow's activities, in memory: what production writes to the outbox, the
simulation records, and reads as the read model would.

Same names and signatures as the worker's (workflows/activities.py): `record_dossier_step`
(one step's events, customer mails and staff notices), the older per-effect ones
(`publish_dossier_event`, `send_dossier_mail`, `notify_staff`) and `hand_over`, which asks the
simulated service (simulation/services.py) as the NATS request asks the real one. Each event's
`set` fields are laid over the dossier's facts, as services/dossier/projection.py lays them over
its row; the mails and notices are kept with their time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from temporalio import activity

from assistance.commitment import Commitment
from assistance.events import Event
from services.dossier.state import DossierOpening, HandOver, MailOrder, StaffNotice, StepRecord
from simulation.figures import DossierFacts

HandOverAnswer = Callable[[HandOver, datetime], Awaitable[dict[str, Any]]]


class Recorder:
    def __init__(self, commitment: Commitment, hand_over: HandOverAnswer) -> None:
        self.commitment = commitment
        self.answer = hand_over
        self.dossiers: dict[str, DossierFacts] = {}
        self._seq: dict[str, int] = {}  # the last event laid over each dossier
        self.steps = 0
        self.mails = 0
        self.notices = 0

    def opened(self, opening: DossierOpening, calendar: Any) -> None:
        """A dossier about to start (intake's deposit): its R3 times, as the workflow has them."""
        self.dossiers[opening.dossier_id] = DossierFacts(
            dossier_id=opening.dossier_id,
            reference=opening.reference,
            channel=opening.channel,
            received_at=opening.received_at,
            due=opening.first_response_due,
            warning_at=self.commitment.warning_at(
                calendar, opening.received_at, opening.first_response_due
            ),
        )

    # --- the activities ------------------------------------------------------------------------

    @activity.defn(name="record_dossier_step")
    async def record_step(self, record: StepRecord) -> list[str]:
        """Also run as a local activity (patch `steps-recorded-locally`), whose scheduled time
        is not the workflow's: a step's time is its events' (`workflow.now()` of the step)."""
        at = (
            record.events[0].occurred_at
            if record.events
            else activity.info().current_attempt_scheduled_time
        )
        self.steps += 1
        for event in record.events:
            self._event(event)
        for order in record.mails:
            self._mail(order, at)
        for notice in record.notices:
            self._notice(notice, at)
        return [message_id(order) for order in record.mails]

    @activity.defn(name="publish_dossier_event")
    async def publish_event(self, event: Event) -> None:
        self._event(event)

    @activity.defn(name="send_dossier_mail")
    async def send_mail(self, order: MailOrder) -> str:
        self._mail(order, activity.info().current_attempt_scheduled_time)
        return message_id(order)

    @activity.defn(name="notify_staff")
    async def notify_staff(self, notice: StaffNotice) -> list[str]:
        self._notice(notice, activity.info().current_attempt_scheduled_time)
        return ["equipe@manao.example"]

    @activity.defn(name="hand_over")
    async def hand_over(self, order: HandOver) -> dict[str, Any]:
        return await self.answer(order, activity.info().current_attempt_scheduled_time)

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.record_step,
            self.publish_event,
            self.send_mail,
            self.notify_staff,
            self.hand_over,
        ]

    # --- the read model ------------------------------------------------------------------------

    def _event(self, event: Event) -> None:
        d = self.dossiers.get(str(event.data.get("dossier_id")))
        if d is None:
            return
        what = event.type.removeprefix("dossier.dossier.")
        seq = int(event.data.get("seq") or 0)
        if seq > self._seq.get(d.dossier_id, 0):
            # the steps' activities may finish in any order: the latest event's fields win, as
            # the read model applies each `seq` once, in order
            self._seq[d.dossier_id] = seq
            fields = event.data.get("set") or {}
            d.status = fields.get("status", d.status)
            d.kind = fields.get("kind", d.kind)
            d.technician_id = fields.get("technician_id", d.technician_id)
            d.first_responded_at = _instant(fields.get("first_responded_at"))
            d.closed_at = _instant(fields.get("closed_at"))
        at = event.occurred_at
        if what == "taken" and d.taken_at is None:
            d.taken_at = at
        elif what == "first_response_warned":
            d.warned_at = d.warned_at or at
        elif what == "first_response_breached":
            d.breached_at = d.breached_at or at
        elif what == "reminded":
            d.reminders += 1
        elif what == "escalated":
            d.escalations += 1

    def _mail(self, order: MailOrder, at: datetime) -> None:
        self.mails += 1
        d = self.dossiers.get(order.dossier_id)
        if d is not None:
            d.mails.append((order.template, at))

    def _notice(self, notice: StaffNotice, at: datetime) -> None:
        self.notices += 1
        d = self.dossiers.get(notice.dossier_id)
        if d is not None and notice.kind == "first_response_breach" and notice.audience == "admins":
            d.breach_escalated_at = d.breach_escalated_at or at


def message_id(order: MailOrder) -> str:
    return f"<{order.reference}.{order.step}@simulation.manao.example>"


def _instant(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
