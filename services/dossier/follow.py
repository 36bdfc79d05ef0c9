"""Follow links (issue 14, decision 0019): which dossier a link opens, revoking a dossier's
links, and mailing an address the links of its dossiers (the same answer for any address)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import urlencode

import asyncpg

from assistance import follow, grants, mail, outbox
from assistance.settings import Settings
from services.dossier import repo
from services.dossier.projection import RECEIVED

PER_HOUR = 3  # link mails per address per hour


def link(settings: Settings, dossier_id: uuid.UUID, email: str) -> str:
    token = follow.sign(dossier_id, email, settings.mail_signing_key)
    return f"{settings.public_url.rstrip('/')}/suivi/{token}"


async def followed_dossier(
    conn: asyncpg.Pool | asyncpg.Connection, token: str, settings: Settings
) -> tuple[uuid.UUID, uuid.UUID | None] | None:
    """The dossier (and its organisation) a valid link opens; None when the link is forged,
    revoked, or its dossier closed longer ago than the reopen window."""
    parsed = follow.parse(token)
    if parsed is None:
        return None
    found = await repo.facts(conn, parsed.dossier_id)
    if found is None or not follow.signed_for(
        parsed, found["requester_email"], settings.mail_signing_key
    ):
        return None
    revoked_at = await conn.fetchval(
        "SELECT revoked_at FROM dossier.follow_revocations WHERE dossier_id = $1",
        parsed.dossier_id,
    )
    if revoked_at is not None and parsed.issued <= revoked_at.timestamp() * 1000:
        return None
    window = timedelta(days=settings.reopen_window_days)
    closed_at = found.get("closed_at")
    if closed_at is not None and closed_at + window < datetime.now(UTC):
        return None
    return parsed.dossier_id, found.get("organisation_id")


# Where mail intake serves a mail's file to the bearer of a grant (its HTTP API, relative to the
# API's base): the dossier service decides, intake serves the bytes (decision 0019, addendum).
GRANTED_MAIL_FILE = "/api/v1/mail/attachments/{attachment_id}/granted"


async def shows_attachment(
    conn: asyncpg.Pool | asyncpg.Connection, dossier_id: uuid.UUID, attachment_id: uuid.UUID
) -> bool:
    """Whether a customer reading this dossier sees this file of a mail: one of the dossier's
    timeline entries a customer sees (the mail that opened it, a reply) lists it. A file of
    another dossier or of an internal entry is not."""
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (
                   SELECT 1 FROM dossier.timeline t
                    WHERE t.dossier_id = $1 AND t.visibility = 'customer'
                      AND t.data -> 'attachments' @> jsonb_build_array(
                          jsonb_build_object('id', $2::text)))""",
            dossier_id,
            str(attachment_id),
        )
    )


def granted_mail_file(settings: Settings, attachment_id: uuid.UUID) -> str:
    """Intake's download of this file with a short-lived grant for it alone."""
    grant = grants.issue(grants.mail_attachment(attachment_id), settings.mail_signing_key)
    path = GRANTED_MAIL_FILE.format(attachment_id=attachment_id)
    return f"{path}?{urlencode({'acces': grant})}"


async def revoke(pool: asyncpg.Pool, dossier_id: uuid.UUID, by: uuid.UUID | None) -> datetime:
    """Every link of the dossier issued until now stops working; later mails carry new ones."""
    return await pool.fetchval(  # type: ignore[no-any-return]
        """INSERT INTO dossier.follow_revocations (dossier_id, revoked_at, revoked_by)
           VALUES ($1, now(), $2)
           ON CONFLICT (dossier_id) DO UPDATE SET revoked_at = now(), revoked_by = $2
           RETURNING revoked_at""",
        dossier_id,
        by,
    )


async def mail_links(pool: asyncpg.Pool, settings: Settings, email: str) -> None:
    """Mail `email` a link to each of its dossiers still open or within the reopen window.

    Nothing tells the caller whether the address has dossiers: it is mailed or not."""
    email = email.strip().lower()
    window = timedelta(days=settings.reopen_window_days)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('follow:' || $1))", email)
        recent = await conn.fetchval(
            "SELECT count(*) FROM dossier.follow_link_mails WHERE email = $1 "
            "AND sent_at > now() - interval '1 hour'",
            email,
        )
        if recent >= PER_HOUR:
            return
        rows = [
            (r["id"], r["reference"], r["subject"])
            for r in await conn.fetch(
                """SELECT id, reference, subject FROM dossier.dossiers
                   WHERE lower(requester_email) = $1
                     AND (closed_at IS NULL OR closed_at > now() - $2::interval)
                   ORDER BY received_at DESC LIMIT 20""",
                email,
                window,
            )
        ]
        # deposited a moment ago (NATS down, or the projection a moment behind): not in the
        # read model yet, found by its `received` event (R13)
        early = {
            uuid.UUID(e.data["dossier_id"]): e
            for e in await outbox.kept_events(conn, RECEIVED, "requester_email", email)
        }
        # in the read model but not found by address: its requester not projected yet (the
        # dossier's own events may come first); left out only when closed past the window
        ended = {
            r["id"]
            for r in await conn.fetch(
                """SELECT id FROM dossier.dossiers WHERE id = ANY($1::uuid[])
                     AND closed_at <= now() - $2::interval""",
                list(early),
                window,
            )
        }
        shown = {r[0] for r in rows}
        for dossier_id, event in early.items():
            if dossier_id not in shown and dossier_id not in ended:
                rows.insert(0, (dossier_id, event.data["reference"], event.data["subject"]))
        if not rows:
            return
        await conn.execute("INSERT INTO dossier.follow_link_mails (email) VALUES ($1)", email)
    lines = [
        f"- {reference} « {subject} » :\n  {link(settings, dossier_id, email)}"
        for dossier_id, reference, subject in rows
    ]
    await mail.send(
        _message(settings, email, "\n".join(lines)), settings.smtp_host, settings.smtp_port
    )


def _message(settings: Settings, email: str, links: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Assistance Manao <{settings.mail_from}>"
    msg["To"] = email
    msg["Subject"] = "Vos liens de suivi de dossier — assistance Manao"
    msg["Message-ID"] = make_msgid(domain=settings.mail_domain)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Auto-Submitted"] = "auto-generated"
    msg["Content-Language"] = "fr"
    msg.set_content(
        "Bonjour,\n\n"
        "Voici le lien de suivi de chacun de vos dossiers : il ouvre le dossier sans compte, "
        "pour vous seul ; ne le transférez pas.\n\n"
        f"{links}\n\n"
        "Si vous n'avez rien demandé, ignorez ce message.\n\n"
        "L'équipe Assistance Manao\n"
    )
    return msg
