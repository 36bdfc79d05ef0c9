"""Helpers for the mail tests: build messages, send them with smtplib, read the results."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import httpx

from assistance.directory import Role
from assistance.mail import verify_message_id
from deploy.local.stack import CaughtMail, LocalStack
from tests.helpers import auth, eventually

CORPUS = Path(__file__).parent / "mail_corpus"
SUPPORT = "assistance@manao.eu"


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def unique(prefix: str = "client") -> str:
    """A sender address no other test uses (the rate limit is per sender)."""
    return f"{prefix}.{uuid.uuid4().hex[:10]}@exemple-client.fr"


def build_mail(
    sender: str,
    subject: str = "Question sur Manao Compta",
    text: str = "Bonjour,\nl'export FEC s'arrête à 50 %.\nMerci,\nClaire",
    *,
    name: str = "Claire Martin",
    to: str = SUPPORT,
    message_id: str | None | bool = True,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
) -> bytes:
    message = EmailMessage()
    message["From"] = f"{name} <{sender}>" if name else sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    if message_id is True:
        message["Message-ID"] = make_msgid(domain="exemple-client.fr")
    elif isinstance(message_id, str):
        message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for key, value in (headers or {}).items():
        message[key] = value
    message.set_content(text)
    for filename, ctype, data in attachments:
        maintype, _, subtype = ctype.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))  # as on the wire


def _send(port: int, raw: bytes, mail_from: str, rcpt: tuple[str, ...], lmtp: bool) -> Any:
    client: smtplib.SMTP = (
        smtplib.LMTP("127.0.0.1", port) if lmtp else smtplib.SMTP("127.0.0.1", port, timeout=30)
    )
    try:
        return client.sendmail(mail_from, list(rcpt), raw)
    finally:
        client.quit()


async def send(
    port: int,
    raw: bytes,
    mail_from: str = "sender@exemple-client.fr",
    rcpt: tuple[str, ...] = (SUPPORT,),
    lmtp: bool = False,
) -> Any:
    """Deliver over real SMTP (or LMTP); smtplib blocks, so it runs in a thread."""
    return await asyncio.to_thread(_send, port, raw, mail_from, rcpt, lmtp)


async def ledger(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    r = await http.get("/api/v1/mail/ledger", headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()


def counts(book: dict[str, Any]) -> dict[str, int]:
    """The ledger's figures as flat counters (to compare before and after)."""
    return {
        "received": book["received"],
        "opened": book["ingested"]["opened"],
        "joined": book["ingested"]["joined"],
        "quarantined": book["quarantined"]["total"],
        "duplicates": book["duplicates"],
        "rejected": book["rejected"]["total"],
    }


def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    a, b = counts(before), counts(after)
    return {k: b[k] - a[k] for k in a if b[k] != a[k]}


async def mail_by_message_id(pool: Any, message_id: str) -> Any:
    return await pool.fetchrow(
        "SELECT * FROM intake.mail_messages WHERE message_id = $1", message_id
    )


async def dossier(http: httpx.AsyncClient, tokens: dict[Role, str], dossier_id: str) -> dict:
    async def opened() -> dict | None:
        got = await http.get(
            f"/api/v1/dossiers/{dossier_id}", headers=auth(tokens[Role.technician])
        )
        if got.status_code != 200:
            return None
        body = got.json()
        return body if any(e["kind"] == "opened" for e in body["timeline"]) else None

    return await eventually(opened, timeout=20)


async def first_mail(stack: LocalStack, reference: str, key: str) -> CaughtMail:
    """The first mail the workflow sent for `reference` (its acknowledgement), as caught."""

    def is_ack(mail: CaughtMail) -> bool:
        mid = str(mail.message().get("Message-ID", ""))
        found = verify_message_id(mid, key)
        return found is not None and found[0] == reference

    return await stack.mail.wait_for(is_ack, timeout=20)
