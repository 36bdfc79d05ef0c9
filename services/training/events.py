"""The facts this service publishes, each carrying `dossier_id` (docs/contracts.md).

Event ids are stable per fact, so a replay is dropped by JetStream's duplicate window and by
the dossier workflow: `<appointment id>:booked`, `:rescheduled:<sequence>`, `:cancelled`,
`:held`, `:missed`, and `<request id>:unavailable`.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from assistance import outbox
from assistance.events import Event
from assistance.french import local as in_paris
from services.training.mailer import SOURCE

BOOKED = "training.appointment.booked"
RESCHEDULED = "training.appointment.rescheduled"
CANCELLED = "training.appointment.cancelled"
HELD = "training.appointment.held"
MISSED = "training.appointment.missed"
UNAVAILABLE = "training.booking.unavailable"


def appointment_data(appt: dict[str, Any]) -> dict[str, Any]:
    """What the dossier workflow reads of an appointment (contracts.md, section 2)."""
    return {
        "dossier_id": str(appt["dossier_id"]),
        "appointment_id": str(appt["id"]),
        "request_id": str(appt["request_id"]),
        "reference": appt["reference"],
        "software": appt["software"],
        "starts_at": in_paris(appt["starts_at"]).isoformat(),
        "ends_at": in_paris(appt["ends_at"]).isoformat(),
        "trainer_id": str(appt["trainer_id"]),
        "trainer_name": appt["trainer_name"],
        "link": appt["link"],
        "sequence": appt["sequence"],
    }


def event_id(type_: str, appt: dict[str, Any]) -> str:
    what = type_.rsplit(".", 1)[1]
    if type_ == RESCHEDULED:
        return f"{appt['id']}:{what}:{appt['sequence']}"
    return f"{appt['id']}:{what}"


async def publish_appointment(
    conn: asyncpg.Connection, type_: str, appt: dict[str, Any], **extra: Any
) -> Event:
    """Queue the fact in the caller's transaction (the outbox relay publishes it)."""
    event = Event(id=event_id(type_, appt), type=type_, data={**appointment_data(appt), **extra})
    await outbox.enqueue_event(conn, SOURCE, event)
    return event


async def publish_unavailable(conn: asyncpg.Connection, data: dict[str, Any]) -> Event:
    event = Event(id=f"{data['request_id']}:unavailable", type=UNAVAILABLE, data=data)
    await outbox.enqueue_event(conn, SOURCE, event)
    return event
