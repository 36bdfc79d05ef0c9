"""The activities the dossier workflow calls, by type: their names and signatures, no I/O.

The workflow calls these by reference (`workflow.start_activity(publish_dossier_event, ...)`),
so mypy checks every argument and result, while the workflow never imports the services' I/O
code into its sandbox. The worker registers the implementations under the same names:
`DossierActivities` (services/dossier/activities.py) and `HandOverActivities`
(services/dossier/handover.py); tests/workflows/test_determinism.py checks that the names and
signatures agree.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity

from assistance.events import Event
from services.dossier.state import HandOver, MailOrder, StaffNotice, StepRecord


@activity.defn(name="publish_dossier_event")
async def publish_dossier_event(event: Event) -> None:
    """Publish a `dossier.dossier.*` fact (read model, other services)."""
    raise NotImplementedError("runs on the worker: DossierActivities.publish_event")


@activity.defn(name="send_dossier_mail")
async def send_dossier_mail(order: MailOrder) -> str:
    """Mail the customer once per dossier step; returns the mail's Message-ID."""
    raise NotImplementedError("runs on the worker: DossierActivities.send_mail")


@activity.defn(name="notify_staff")
async def notify_staff(notice: StaffNotice) -> list[str]:
    """Warn, remind or escalate to staff (R2, R3); returns the recipients."""
    raise NotImplementedError("runs on the worker: DossierActivities.notify_staff")


@activity.defn(name="record_dossier_step")
async def record_dossier_step(record: StepRecord) -> list[str]:
    """Write one step's events, customer mails and staff notices to the outbox in one
    transaction (the relay sends them); returns the Message-IDs of its customer mails."""
    raise NotImplementedError("runs on the worker: DossierActivities.record_step")


@activity.defn(name="hand_over")
async def hand_over(order: HandOver) -> dict[str, Any]:
    """R7–R9: hand the dossier to the service that owns the next step; returns its ticket."""
    raise NotImplementedError("runs on the worker: HandOverActivities.hand_over")


DOSSIER_ACTIVITIES = (
    publish_dossier_event,
    send_dossier_mail,
    notify_staff,
    record_dossier_step,
    hand_over,
)
