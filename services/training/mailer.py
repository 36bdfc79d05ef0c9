"""Training mail goes through the outbox: queued in the transaction of the change it tells
about, sent by the relay afterwards, retried until the SMTP server accepts it (R13).

An invitation is queued as the data it is rendered from (rendering MIME and ICS is kept out of
the booking transaction, which holds the trainer's time); other mail is queued rendered."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, Literal

import asyncpg

from assistance import mail_once, outbox
from assistance.outbox import Sender
from assistance.settings import Settings
from services.training import invitation
from services.training.invitation import Invitation

SOURCE = "training"
MAIL = "training_mail"  # the outbox kind of a rendered mail
INVITATION = "training_invitation"  # the outbox kind of an invitation to render and send


async def enqueue(conn: asyncpg.Connection, message: EmailMessage) -> None:
    """Queue `message` inside the caller's transaction (rendered once: a retry resends the
    same bytes, with the same Message-ID)."""
    await outbox.enqueue(
        conn, SOURCE, MAIL, {"to": str(message["To"]), "message": message.as_string()}
    )


async def enqueue_invitation(
    conn: asyncpg.Connection, inv: Invitation, recipient: Literal["customer", "trainer"]
) -> None:
    await outbox.enqueue(
        conn, SOURCE, INVITATION, {"invitation": inv.as_json(), "recipient": recipient}
    )


def senders(settings: Settings, pool: asyncpg.Pool) -> dict[str, Sender]:
    """The outbox senders of this service's mail, by kind: each mail at most once in practice
    (its Message-ID recorded `sending` before SMTP, `sent` after: assistance/mail_once.py)."""
    return {MAIL: sender(settings, pool), INVITATION: invitation_sender(settings, pool)}


def invitation_sender(settings: Settings, pool: asyncpg.Pool) -> Sender:
    async def send(payload: dict[str, Any]) -> None:
        inv = Invitation.from_json(payload["invitation"])
        person = inv.customer if payload["recipient"] == "customer" else inv.trainer
        message = invitation.message(inv, person, settings)
        await mail_once.send_shared(pool, settings, SOURCE, message)

    return send


def sender(settings: Settings, pool: asyncpg.Pool) -> Sender:
    async def send(payload: dict[str, Any]) -> None:
        message = email.message_from_string(payload["message"], policy=default_policy)
        assert isinstance(message, EmailMessage)
        await mail_once.send_shared(pool, settings, SOURCE, message)

    return send
