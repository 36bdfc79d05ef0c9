"""Thin Temporal adapters for the dossier workflow's side effects.

Since the patch `effects-recorded-per-step` (docs/decisions/0022) a step's events, customer
mails and staff notices are one activity, `record_step`: written to the transactional outbox
in one PostgreSQL transaction (source `dossier`), then published and sent by the dossier's
outbox relay (`mail_sender`) with the outbox's bounded retries and parking. The activities of
one effect each (`publish_event`, `send_mail`, `notify_staff`) stay for the dossiers that still
run without the patch."""

from __future__ import annotations

import dataclasses
import email
import logging
import uuid
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, TypeAlias

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from assistance import directory, mail_once, outbox
from assistance.bus import Bus
from assistance.directory import Role
from assistance.events import Event
from assistance.outbox import Sender
from assistance.settings import Settings
from services.dossier import mail, repo
from services.dossier.state import MailOrder, StaffNotice, StepRecord

log = logging.getLogger(__name__)

AUDIENCES = frozenset({"technician", "team", "admins", "training_lead"})
SOURCE = "dossier"  # the outbox rows of the dossiers' steps
MAIL = "dossier_mail"  # the outbox kind of a rendered mail (to a customer or to staff)
Db: TypeAlias = asyncpg.Pool | asyncpg.Connection  # noqa: UP040 (Python 3.11)


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
        message = _render(await _looked_up(self.pool, order), self.settings)
        if await answered_today(self.pool, message, order.dossier_id, order.to):
            log.info("%s: no second automatic answer today to %s", order.reference, order.to)
            return str(message["Message-ID"])
        await self._send_once(message, order.dossier_id, order.step, order.template, order.to)
        return str(message["Message-ID"])

    @activity.defn(name="notify_staff")
    async def notify_staff(self, notice: StaffNotice) -> list[str]:
        """Warn, remind or escalate (R2, R3): one automatic mail per member of the audience.

        The notice and its recipients are recorded at the first attempt; a retry mails only
        those not mailed yet. Returns the recipients.
        """
        _check_audience(notice)
        async with self.pool.acquire() as conn:
            recipients = await self._noticed(conn, notice)
        for recipient in recipients:
            message = mail.render_notice(notice, recipient, self.settings)
            await self._send_once(message, notice.dossier_id, notice.step, notice.kind, recipient)
        return recipients

    @activity.defn(name="record_dossier_step")
    async def record_step(self, record: StepRecord) -> list[str]:
        """One step of a dossier (decision 0022): its events, its mails to the customer and its
        notices to staff written to the outbox in one transaction, for the relay to publish
        and send; returns the Message-IDs of the customer mails, in order.

        Idempotent: the step is recorded (`dossier.recorded_steps`) in the same transaction,
        so a retry whose first answer was lost writes nothing twice and answers the same
        Message-IDs. A mail goes out at most once in practice (its Message-ID is the key of
        `dossier.outbound_mail`, decision 0015); an unknown template or audience fails at
        once (non-retryable: parked, recorded on the dossier, nothing of the step written).
        """
        for notice in record.notices:
            _check_audience(notice)
        step = _first_step(record)
        dossier_id = uuid.UUID(record.dossier_id)
        async with self.pool.acquire() as conn, conn.transaction():
            # one step at a time per dossier: a retry meeting its first attempt still running
            # waits for it, then finds the step recorded
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", record.dossier_id)
            done = await conn.fetchval(
                "SELECT message_ids FROM dossier.recorded_steps WHERE dossier_id = $1 "
                "AND step = $2",
                dossier_id,
                step,
            )
            if done is not None:
                return list(done)
            rows: list[tuple[str, dict[str, Any]]] = [
                ("publish", event.model_dump(mode="json")) for event in record.events
            ]
            message_ids: list[str] = []
            for order in record.mails:
                message = _render(await _looked_up(conn, order), self.settings)
                message_ids.append(str(message["Message-ID"]))
                row = mail_row(message, order.dossier_id, order.step, order.template, order.to)
                rows.append((MAIL, row))
            for notice in record.notices:
                for recipient in await self._noticed(conn, notice):
                    message = mail.render_notice(notice, recipient, self.settings)
                    row = mail_row(message, notice.dossier_id, notice.step, notice.kind, recipient)
                    rows.append((MAIL, row))
            await outbox.enqueue_many(conn, SOURCE, rows)
            await conn.execute(
                "INSERT INTO dossier.recorded_steps (dossier_id, step, message_ids) "
                "VALUES ($1, $2, $3)",
                dossier_id,
                step,
                message_ids,
            )
        return message_ids

    async def _noticed(self, conn: asyncpg.Connection, notice: StaffNotice) -> list[str]:
        """Record the notice and its recipients (the first time); returns the recipients."""
        dossier_id = uuid.UUID(notice.dossier_id)
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
        await send_once(self.pool, self.settings, message, dossier_id, step, template, recipient)


def _check_audience(notice: StaffNotice) -> None:
    if notice.audience not in AUDIENCES:
        raise ApplicationError(
            f"unknown audience {notice.audience!r}", type="UnknownAudience", non_retryable=True
        )


def _first_step(record: StepRecord) -> int:
    """The step's key: the number of its first effect (every effect has its own number)."""
    steps = [int(e.data["seq"]) for e in record.events if "seq" in e.data]
    steps += [m.step for m in record.mails] + [n.step for n in record.notices]
    if not steps:
        raise ApplicationError("an empty step record", type="EmptyStep", non_retryable=True)
    return min(steps)


async def _looked_up(db: Db, order: MailOrder) -> MailOrder:
    """The order with what the mail names looked up: how the request came (a logged phone
    call was answered live: its acknowledgement says so) and the software's name, never its
    code (issue 14)."""
    if order.template == "acknowledgement" and "channel" not in order.context:
        found = await repo.facts(db, uuid.UUID(order.dossier_id))
        channel = found.get("channel") if found is not None else None
        order = dataclasses.replace(order, context={**order.context, "channel": channel})
    software = order.context.get("software")
    if software and "software_name" not in order.context:
        name = await db.fetchval(
            "SELECT name FROM directory.softwares WHERE code = $1", str(software)
        )
        order = dataclasses.replace(order, context={**order.context, "software_name": name})
    return order


def _render(order: MailOrder, settings: Settings) -> EmailMessage:
    try:
        return mail.render(order, settings)
    except mail.UnknownTemplate as error:
        raise ApplicationError(str(error), type="UnknownTemplate", non_retryable=True) from error


async def answered_today(db: Db, message: EmailMessage, dossier_id: str, recipient: str) -> bool:
    """RFC 3834 §2 (issue 14): at most one automatic answer a day to one sender about one
    dossier; a retry of the same mail (same Message-ID) is not a second answer."""
    if message["Auto-Submitted"] != "auto-replied":
        return False
    return bool(
        await db.fetchval(
            """SELECT EXISTS (SELECT 1 FROM dossier.outbound_mail
               WHERE dossier_id = $1 AND lower(recipient) = lower($2)
                 AND template = ANY($3::text[]) AND message_id <> $4
                 AND sent_at > now() - interval '1 day')""",
            uuid.UUID(dossier_id),
            recipient,
            sorted(mail.AUTO_REPLIED),
            str(message["Message-ID"]),
        )
    )


async def send_once(
    pool: asyncpg.Pool,
    settings: Settings,
    message: EmailMessage,
    dossier_id: str,
    step: int,
    template: str,
    recipient: str,
) -> None:
    """Send unless this Message-ID was sent (assistance/mail_once.py, decision 0015).

    The row is committed `sending` with a lease before the SMTP transaction and marked `sent`
    once the server accepted the mail; a retry within the lease waits (retryable), one after
    it (the sender died mid-send) sends again with the same Message-ID.
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
        lease_s=settings.mail_sending_lease_seconds,
    )
    await mail_once.send_once(pool, message, settings.smtp_host, settings.smtp_port, out)


def mail_row(
    message: EmailMessage, dossier_id: str, step: int, template: str, recipient: str
) -> dict[str, Any]:
    """A rendered mail as an outbox row (ordered after the dossier's earlier mails): rendered
    once, so a retry sends the same bytes with the same Message-ID."""
    return {
        "dossier_id": dossier_id,
        "step": step,
        "template": template,
        "recipient": recipient,
        "message": message.as_string(),
    }


def mail_sender(pool: asyncpg.Pool, settings: Settings) -> Sender:
    """The outbox sender of the dossiers' mails: the once-a-day rule for automatic answers,
    then sent at most once in practice in `dossier.outbound_mail`."""

    async def send(payload: dict[str, Any]) -> None:
        message = email.message_from_string(payload["message"], policy=default_policy)
        assert isinstance(message, EmailMessage)
        dossier_id, recipient = str(payload["dossier_id"]), str(payload["recipient"])
        if await answered_today(pool, message, dossier_id, recipient):
            log.info("dossier %s: no second automatic answer today to %s", dossier_id, recipient)
            return
        step, template = int(payload["step"]), str(payload["template"])
        await send_once(pool, settings, message, dossier_id, step, template, recipient)

    return send
