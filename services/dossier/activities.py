"""Thin Temporal adapters for the dossier workflow's side effects."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from email.message import EmailMessage

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from assistance import directory, mail_once
from assistance.bus import Bus
from assistance.directory import Role
from assistance.events import Event
from assistance.settings import Settings
from services.dossier import mail
from services.dossier.state import MailOrder, StaffNotice

log = logging.getLogger(__name__)

AUDIENCES = frozenset({"technician", "team", "admins", "training_lead"})


class DossierActivities:
    def __init__(self, bus: Bus, pool: asyncpg.Pool, settings: Settings) -> None:
        self.bus = bus
        self.pool = pool
        self.settings = settings

    @activity.defn(name="publish_dossier_event")
    async def publish_event(self, event: Event) -> None:
        """Publish a fact; idempotent through its `Nats-Msg-Id` (= `<dossier id>:<step>`)."""
        await self.bus.publish(event)

    @activity.defn(name="send_dossier_mail")
    async def send_mail(self, order: MailOrder) -> str:
        """Mail the customer for one step of a dossier, once; returns the mail's Message-ID.

        Idempotent per dossier and step: the signed Message-ID is the key of
        `dossier.outbound_mail`. SMTP failures raise, and Temporal retries the activity.
        """
        if order.template == "acknowledgement" and "channel" not in order.context:
            # a logged phone call was answered live: its acknowledgement says so (issue 14)
            channel = await self.pool.fetchval(
                "SELECT channel FROM intake.requests WHERE id = $1", uuid.UUID(order.dossier_id)
            )
            order = dataclasses.replace(order, context={**order.context, "channel": channel})
        software = order.context.get("software")
        if software and "software_name" not in order.context:
            # a software by its name in a mail, never by its code (issue 14)
            name = await self.pool.fetchval(
                "SELECT name FROM directory.softwares WHERE code = $1", str(software)
            )
            order = dataclasses.replace(order, context={**order.context, "software_name": name})
        try:
            message = mail.render(order, self.settings)
        except mail.UnknownTemplate as error:
            raise ApplicationError(
                str(error), type="UnknownTemplate", non_retryable=True
            ) from error
        if await self._answered_today(message, order):
            log.info("%s: no second automatic answer today to %s", order.reference, order.to)
            return str(message["Message-ID"])
        await self._send_once(message, order.dossier_id, order.step, order.template, order.to)
        return str(message["Message-ID"])

    async def _answered_today(self, message: EmailMessage, order: MailOrder) -> bool:
        """RFC 3834 §2 (issue 14): at most one automatic answer a day to one sender about one
        dossier; a retry of the same mail (same Message-ID) is not a second answer."""
        if message["Auto-Submitted"] != "auto-replied":
            return False
        return bool(
            await self.pool.fetchval(
                """SELECT EXISTS (SELECT 1 FROM dossier.outbound_mail
                   WHERE dossier_id = $1 AND lower(recipient) = lower($2)
                     AND template = ANY($3::text[]) AND message_id <> $4
                     AND sent_at > now() - interval '1 day')""",
                uuid.UUID(order.dossier_id),
                order.to,
                sorted(mail.AUTO_REPLIED),
                str(message["Message-ID"]),
            )
        )

    @activity.defn(name="notify_staff")
    async def notify_staff(self, notice: StaffNotice) -> list[str]:
        """Warn, remind or escalate (R2, R3): one automatic mail per member of the audience.

        The notice and its recipients are recorded at the first attempt; a retry mails only
        those not mailed yet. Returns the recipients.
        """
        if notice.audience not in AUDIENCES:
            raise ApplicationError(
                f"unknown audience {notice.audience!r}", type="UnknownAudience", non_retryable=True
            )
        dossier_id = uuid.UUID(notice.dossier_id)
        async with self.pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO dossier.staff_notices
                       (dossier_id, step, kind, audience, recipients, subject, text)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT (dossier_id, step) DO NOTHING""",
                dossier_id,
                notice.step,
                notice.kind,
                notice.audience,
                await self._recipients(conn, notice),
                notice.subject,
                notice.text,
            )
            recipients: list[str] = await conn.fetchval(
                "SELECT recipients FROM dossier.staff_notices WHERE dossier_id = $1 AND step = $2",
                dossier_id,
                notice.step,
            )
        for recipient in recipients:
            message = mail.render_notice(notice, recipient, self.settings)
            await self._send_once(message, notice.dossier_id, notice.step, notice.kind, recipient)
        return recipients

    async def _recipients(self, conn: asyncpg.Connection, notice: StaffNotice) -> list[str]:
        """Who hears of a notice; never nobody (R2: no dossier stalls silently)."""
        found: list[str] = []
        if notice.audience == "training_lead":
            found = [self.settings.training_lead_email]
        if notice.audience == "technician" and notice.technician_id:
            email = await directory.user_email(conn, notice.technician_id)
            found = [email] if email else []
        if not found and notice.audience in ("technician", "team"):
            found = await directory.emails_with_role(conn, Role.technician)
        if not found:  # admins, or nobody else to tell
            found = await directory.emails_with_role(conn, Role.admin)
        if not found:
            log.warning("no staff to notify for %s; writing to the support address", notice)
            found = [self.settings.support_address]
        return sorted(set(found))

    async def _send_once(
        self, message: EmailMessage, dossier_id: str, step: int, template: str, recipient: str
    ) -> None:
        """Send unless this Message-ID was sent (assistance/mail_once.py, decision 0015).

        The row is committed `sending` with a lease before the SMTP transaction and marked
        `sent` once the server accepted the mail; a retry within the lease waits (retryable),
        one after it (the sender died mid-send) sends again with the same Message-ID.
        """
        out = mail_once.Outgoing(
            table="dossier.outbound_mail",
            columns={
                "dossier_id": uuid.UUID(dossier_id),
                "step": step,
                "template": template,
                "recipient": recipient,
                "subject": str(message["Subject"]),
            },
            lease_s=self.settings.mail_sending_lease_seconds,
        )
        await mail_once.send_once(
            self.pool, message, self.settings.smtp_host, self.settings.smtp_port, out
        )
