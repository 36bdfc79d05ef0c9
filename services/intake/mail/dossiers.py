"""What a stored mail does to a dossier, written once for the receiver (`ingest.py`) and for a
technician releasing a quarantined mail (`api.py`): open a new dossier (R1, the same path as a
web deposit, channel `mail`), or join an existing one as a customer message (through the
outbox, so it reaches the workflow even with Temporal down, R13)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from assistance import outbox
from assistance.business_time import BusinessCalendar
from assistance.settings import Settings
from services.intake import domain, repo
from services.intake.mail import repo as mail_repo
from services.intake.models import DepositIn, DepositOut
from services.intake.relay import SIGNAL_DOSSIER

NO_TEXT = "(message sans texte)"


async def open_dossier(
    conn: asyncpg.Connection,
    mail_id: uuid.UUID,
    deposit: DepositIn,
    *,
    message_id: str | None,
    received_at: datetime,
    settings: Settings,
    calendar: BusinessCalendar,
    organisation_id: uuid.UUID | None,
    deposited_by: uuid.UUID | None,
    **extra: Any,
) -> DepositOut:
    """R1: a new dossier from this mail, threaded on its Message-ID; `extra` rides in the
    `intake.request.received` event (what the dossier is told about the mail)."""
    answer = await repo.record_request(
        conn,
        deposit,
        channel="mail",
        received_at=received_at,
        first_response_due=domain.first_response_due(
            calendar, received_at, settings.first_response_hours
        ),
        organisation_id=organisation_id,
        deposited_by=deposited_by,
        extra={
            "message_id": message_id,
            "policy": settings.dossier_policy(),
            "requester_verified": organisation_id is not None,
            **extra,
            "mail_id": str(mail_id),
            "attachments": await mail_repo.attachment_refs(conn, mail_id),
        },
    )
    await mail_repo.link_dossier(conn, mail_id, answer.id, answer.reference)
    return answer


async def join_dossier(
    conn: asyncpg.Connection,
    mail_id: uuid.UUID,
    dossier_id: uuid.UUID,
    *,
    text: str,
    author_email: str | None,
    author_name: str,
    message_id: str | None,
    received_at: datetime,
    **extra: Any,
) -> None:
    """R1: the mail reaches its dossier's workflow as a customer message, through the outbox;
    `extra` goes with the signal (e.g. the reference a technician chose)."""
    message = {
        "text": text or NO_TEXT,
        "author_email": author_email,
        "author_name": author_name,
        "via": "mail",
        "message_id": message_id,
        "received_at": received_at.isoformat(),
        "attachments": await mail_repo.attachment_refs(conn, mail_id),
    }
    await outbox.enqueue(
        conn,
        "intake",
        SIGNAL_DOSSIER,
        {
            "dossier_id": str(dossier_id),
            "signal": "customer_message",
            "arg": message,
            "mail_id": str(mail_id),
            **extra,
        },
    )
