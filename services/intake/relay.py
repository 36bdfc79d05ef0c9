"""Intake's outbox senders: a committed request reaches NATS and starts its dossier (R13);
a mail reply reaches its dossier, or goes back to quarantine if the dossier has finished;
intake's automatic mails leave."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any

import asyncpg

from assistance import mail_once
from assistance.outbox import Sender
from assistance.settings import Settings
from assistance.temporal import WorkflowFinished
from services.intake.mail import repo as mail_repo

# Kinds of intake's outbox rows that go to the dossiers' workflows; their senders are given
# by the composition (`Runtime.sender`: workflows/senders.py).
START_DOSSIER = "start_dossier"  # the opening of a dossier: starts its workflow
SIGNAL_DOSSIER = "signal_dossier"  # a mail reply to a dossier: signals its workflow
SEND_MAIL = "send_mail"


def requarantining(signal: Sender, pool: asyncpg.Pool) -> Sender:
    """Signal the dossier's workflow with `signal`; if it has finished (closed past the reopen
    window), the mail goes back to quarantine, where a technician decides."""

    async def send(payload: dict[str, Any]) -> None:
        try:
            await signal(payload)
        except WorkflowFinished:
            if payload.get("mail_id"):
                await mail_repo.requarantine(
                    pool,
                    uuid.UUID(payload["mail_id"]),
                    "dossier_finished",
                    payload.get("reference"),
                )

    return send


def mail_sender(settings: Settings, pool: asyncpg.Pool) -> Sender:
    """Send one automatic mail from intake (a bounce alert to a technician), at most once in
    practice (assistance/mail_once.py)."""

    async def send(payload: dict[str, Any]) -> None:
        message = EmailMessage()
        message["From"] = formataddr(("Assistance Manao", settings.mail_from))
        message["To"] = payload["to"]
        message["Subject"] = payload["subject"]
        message["Message-ID"] = payload["message_id"]
        message["Date"] = formatdate(localtime=False)
        message["Auto-Submitted"] = "auto-generated"
        message["X-Auto-Response-Suppress"] = "All"
        message["Content-Language"] = "fr"
        message.set_content(payload["text"])
        await mail_once.send_shared(pool, settings, "intake", message)

    return send
