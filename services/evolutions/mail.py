"""The mails of the evolutions service, in French (R9): the review agenda to the product
managers and the technicians, the specification to the IT project managers, and the news that
an evolution shipped to each of its requesters (whose dossiers are closed by then).

A mail is composed in the transaction that decides it and written to the outbox (kind `mail`);
the relay hands it to SMTP, and `evolutions.sent_mail` keeps a retried row from mailing twice.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime as rfc2822_datetime
from pathlib import Path
from typing import Any

import asyncpg
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from assistance import mail_once, outbox
from assistance.mail import subject_token
from assistance.settings import Settings
from assistance.text import header_text
from services.evolutions import repo

MAIL = "mail"  # the outbox kind of a mail row
SENDER_NAME = "Assistance Manao"

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=StrictUndefined,
    autoescape=False,  # plain text mails
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def message_id(purpose: str, key: str, recipient: str, domain: str) -> str:
    """A stable Message-ID per purpose, fact and recipient: the idempotency key of a mail.

    Deliberately not a signed dossier id: a reply must not be taken for the customer writing
    to a dossier through a signature (the subject token, where there is one, still threads).
    """
    who = hashlib.sha256(recipient.lower().encode()).hexdigest()[:12]
    return f"<evolutions.{purpose}.{key}.{who}@{domain}>"


def compose(
    purpose: str,
    key: str,
    to: str,
    subject: str,
    template: str,
    context: dict[str, Any],
    settings: Settings,
) -> dict[str, Any]:
    """The outbox payload of one mail (rendered now, so a later template change never alters
    a mail already decided)."""
    text = _TEMPLATES.get_template(f"{template}.txt").render(
        public_url=settings.public_url, **context
    )
    return {
        "message_id": message_id(purpose, key, to, settings.mail_domain),
        "to": to,
        "subject": " ".join(subject.split()),
        "text": text,
        "purpose": purpose,
    }


async def enqueue(conn: asyncpg.Connection, payload: dict[str, Any]) -> None:
    """Write the mail to the outbox, inside the caller's transaction."""
    await outbox.enqueue(conn, "evolutions", MAIL, payload)


def requester_subject(reference: str, text: str) -> str:
    """The dossier's token first, so a reply still joins the dossier (R1)."""
    return f"{subject_token(reference)} {text}"


def build(payload: dict[str, Any], settings: Settings) -> EmailMessage:
    message = EmailMessage()
    message["From"] = Address(SENDER_NAME, addr_spec=settings.mail_from)
    message["To"] = payload["to"]
    message["Reply-To"] = settings.support_address
    message["Subject"] = header_text(payload["subject"])  # one line (issue 11)
    message["Date"] = rfc2822_datetime(datetime.now(UTC))
    message["Message-ID"] = payload["message_id"]
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    message.set_content(payload["text"])
    message["Content-Language"] = "fr"  # after the body: set_content clears Content-* headers
    return message


class MailSender:
    """The outbox sender for `mail` rows: once per Message-ID (assistance/mail_once.py)."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings

    async def __call__(self, payload: dict[str, Any]) -> None:
        mid = payload["message_id"]
        if await repo.mail_sent(self.pool, mid):
            return
        await mail_once.send_shared(
            self.pool, self.settings, "evolutions", build(payload, self.settings)
        )
        await repo.record_sent_mail(self.pool, mid, payload["to"], payload["purpose"])
