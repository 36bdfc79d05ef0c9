"""Training mail goes through the outbox: queued in the transaction of the change it tells
about, sent by the relay afterwards, retried until the SMTP server accepts it (R13)."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import asyncpg

from assistance import mail as smtp
from assistance import outbox
from assistance.outbox import Sender
from assistance.settings import Settings

SOURCE = "training"
MAIL = "training_mail"  # the outbox kind of a queued mail


async def enqueue(conn: asyncpg.Connection, message: EmailMessage) -> None:
    """Queue `message` inside the caller's transaction (rendered once: a retry resends the
    same bytes, with the same Message-ID)."""
    await outbox.enqueue(
        conn, SOURCE, MAIL, {"to": str(message["To"]), "message": message.as_string()}
    )


def sender(settings: Settings) -> Sender:
    async def send(payload: dict[str, Any]) -> None:
        message = email.message_from_string(payload["message"], policy=default_policy)
        assert isinstance(message, EmailMessage)
        await smtp.send(message, settings.smtp_host, settings.smtp_port)

    return send
