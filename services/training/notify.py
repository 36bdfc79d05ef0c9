"""Who is told what, queued in the caller's transaction: invitations to the customer and the
trainer (R7), and the alert to the training lead when no slot exists (never a silent slip)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime as rfc2822_datetime
from typing import Any, Literal

import asyncpg

from assistance import french
from assistance.mail import subject_token
from assistance.settings import Settings
from services.training import invitation, mailer
from services.training.domain import Slot
from services.training.invitation import Change, Invitation, Person

Recipient = Literal["customer", "trainer"]
NoSlotReason = Literal["no_trainer", "no_slot"]


def room_link(template: str) -> str:
    """A screen-sharing / video room nobody can guess (R6, R7)."""
    room = secrets.token_urlsafe(16)
    if "{room}" in template:
        return template.replace("{room}", room)
    return f"{template.rstrip('/')}/{room}"


def invitation_of(
    appt: dict[str, Any], change: Change, reason: str = "", trainer: Person | None = None
) -> Invitation:
    """The invitation for the appointment as it now is (`trainer` overrides who is named)."""
    return Invitation(
        appointment_id=appt["id"],
        reference=appt["reference"],
        software=appt["software"],
        sequence=appt["sequence"],
        starts_at=appt["starts_at"],
        ends_at=appt["ends_at"],
        link=appt["link"],
        customer=Person(appt["requester_email"], appt["requester_name"]),
        trainer=trainer or Person(appt["trainer_email"], appt["trainer_name"]),
        change=change,
        reason=reason,
        brief_text=(appt.get("brief") or {}).get("text", ""),
    )


async def invite(
    conn: asyncpg.Connection,
    inv: Invitation,
    recipients: Iterable[Recipient] = ("customer", "trainer"),
) -> None:
    """Queue the invitation for each recipient, naming the software as people know it."""
    if not inv.software_name:
        name = await conn.fetchval(
            "SELECT name FROM directory.softwares WHERE code = $1", inv.software
        )
        inv = replace(inv, software_name=name or "")
    for who in recipients:
        await mailer.enqueue_invitation(conn, inv, who)


async def alert_lead(
    conn: asyncpg.Connection,
    settings: Settings,
    request: asyncpg.Record,
    alternatives: list[Slot],
    reason: NoSlotReason,
    organisation: str | None,
) -> None:
    """R7: no slot today or the next business day; the lead gets the best alternatives."""
    await mailer.enqueue(conn, lead_message(settings, request, alternatives, reason, organisation))


def lead_message(
    settings: Settings,
    request: asyncpg.Record | dict[str, Any],
    alternatives: list[Slot],
    reason: NoSlotReason,
    organisation: str | None,
) -> EmailMessage:
    request_id: uuid.UUID = request["id"]
    client = f"{organisation} — " if organisation else ""
    lines = [
        "Bonjour,",
        "",
        f"Le dossier {request['reference']} ({client}{request['requester_name']} "
        f"<{request['requester_email']}>) demande une formation sur {request['software']} "
        "aujourd'hui ou le prochain jour ouvré (R7).",
    ]
    if reason == "no_trainer":
        lines.append("Aucun formateur actif n'enseigne ce logiciel : ajoutez-en un.")
    else:
        lines.append("Aucun formateur n'est disponible dans ce délai.")
    lines += ["", "Meilleures alternatives :"]
    lines += [
        f"  - {french.moment(s.starts_at)} avec {s.trainer_name} (formateur {s.trainer_id})"
        for s in alternatives
    ] or ["  aucune dans les jours ouvrés qui suivent"]
    lines += [
        "",
        "Pour réserver un créneau : POST "
        f"{settings.public_url}/api/v1/training/requests/{request_id}/appointment "
        '{"trainer_id": "…", "starts_at": "…"}',
        "",
        f"Contexte de travail : {request['context'] or 'non renseigné'}",
        f"Besoin technique : {request['need'] or 'non renseigné'}",
        "",
        "L'équipe formation Manao",
    ]
    mail = EmailMessage()
    mail["From"] = Address(invitation.SENDER_NAME, addr_spec=settings.mail_from)
    mail["To"] = settings.training_lead_email
    mail["Subject"] = (
        f"{subject_token(request['reference'])} Aucun créneau de formation disponible "
        f"({request['software']})"
    )
    mail["Date"] = rfc2822_datetime(datetime.now(UTC))
    mail["Message-ID"] = f"<training.{request_id}.unavailable@{settings.mail_domain}>"
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content("\n".join(lines) + "\n")
    mail["Content-Language"] = "fr"
    return mail
