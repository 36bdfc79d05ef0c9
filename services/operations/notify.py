"""Administrators are told of parked work (docs/decisions/0013): every minute at most, one
mail per administrator lists the items parked since the last mail. The mails go through the
outbox (source `operations`), so a mail server that is down delays them and loses none."""

from __future__ import annotations

import asyncio
import contextlib
import email
import hashlib
import logging
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import formatdate
from typing import Any

import asyncpg

from assistance import directory, outbox, telemetry
from assistance import mail as smtp
from assistance.directory import Role
from assistance.failures import is_outage
from assistance.outbox import Sender
from assistance.settings import Settings
from services.operations.labels import label
from services.operations.stuck import SOURCE, reference_of

log = logging.getLogger(__name__)

MAIL = "mail"


def _line(r: asyncpg.Record) -> str:
    ref = reference_of(r["data"])
    where = (
        f" — dossier {ref}" if ref else (f" — dossier {r['dossier_id']}" if r["dossier_id"] else "")
    )
    error = " ".join(r["error"].split())[:300]
    return (
        f"- {label(r['source'], r['name'], r['kind'])}{where}\n"
        f"  {r['attempts']} tentative(s) ; dernière erreur : {error}"
    )


def render(settings: Settings, rows: list[asyncpg.Record], to: str) -> EmailMessage:
    n = len(rows)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = (
        "Travail bloqué : 1 élément à examiner"
        if n == 1
        else f"Travail bloqué : {n} éléments à examiner"
    )
    message["Date"] = formatdate(localtime=False)
    ids = f"{rows[0]['id']}-{rows[-1]['id']}-{n}"
    digest = hashlib.sha256(f"{ids}:{to}".encode()).hexdigest()[:16]
    message["Message-ID"] = f"<parked-{ids}-{digest}@{settings.mail_domain}>"
    message["Auto-Submitted"] = "auto-generated"
    body = "\n".join(_line(r) for r in rows)
    message.set_content(
        "Bonjour,\n\n"
        "Des traitements automatiques ont échoué plusieurs fois de suite et ont été mis de "
        "côté. Rien n'est perdu : chaque élément attend votre décision — le relancer une fois "
        "la cause réparée, ou l'abandonner.\n\n"
        f"{body}\n\n"
        f"Le travail bloqué : {settings.public_url}/bureau/operations\n\n"
        "— Centre de service Manao\n"
    )
    return message


async def notify_once(pool: asyncpg.Pool, settings: Settings) -> int:
    """Queue one mail per administrator for the parked items not told yet; returns how many
    items were told. Items about the administrators' own mails are never mailed (a mail
    server refusing them would otherwise mail about itself for ever): the view shows them."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """SELECT * FROM bus.parked WHERE notified_at IS NULL AND state = 'open'
               ORDER BY id LIMIT 200 FOR UPDATE SKIP LOCKED"""
        )
        if not rows:
            return 0
        told = [r for r in rows if not (r["source"] == "outbox" and r["name"] == SOURCE)]
        admins = await directory.emails_with_role(conn, Role.admin)
        if told and not admins:
            log.error("%d parked items and no administrator to tell", len(told))
            admins = [settings.support_address]
        for to in admins if told else []:
            message = render(settings, told, to)
            await outbox.enqueue(
                conn, SOURCE, MAIL, {"to": to, "message": message.as_string()}, key=None
            )
        await conn.execute(
            "UPDATE bus.parked SET notified_at = now() WHERE id = ANY($1::bigint[])",
            [r["id"] for r in rows],
        )
        return len(told)


def sender(settings: Settings) -> Sender:
    async def send(payload: dict[str, Any]) -> None:
        message = email.message_from_string(payload["message"], policy=default_policy)
        assert isinstance(message, EmailMessage)
        await smtp.send(message, settings.smtp_host, settings.smtp_port)

    return send


class Notifier:
    """Woken when an item is parked; mails at most once per `every` seconds."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, every: float) -> None:
        self.pool = pool
        self.settings = settings
        self.every = every
        self._wake = asyncio.Event()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        async with self.pool.acquire() as listener:
            await listener.add_listener("bus_parked", self._on_notify)
            try:
                while True:
                    try:
                        with telemetry.quiet():  # polled housekeeping: no span
                            await notify_once(self.pool, self.settings)
                    except Exception as exc:
                        if not is_outage(exc):
                            raise
                        log.warning("parked items not told yet: %r", exc)
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), 60.0)
                    await asyncio.sleep(self.every)  # batch what is parked meanwhile
            finally:
                with contextlib.suppress(Exception):
                    await listener.remove_listener("bus_parked", self._on_notify)
