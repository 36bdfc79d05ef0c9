"""Sign-in by mail: a single-use link, valid `LINK_MINUTES`, sent to a known address.

The answer is the same whether the address is known or not, so the form tells nobody who
has an account. Following the link issues the session its own API token, revoked at sign-out.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import asyncpg

from assistance import directory, mail
from assistance.directory import Principal
from assistance.settings import Settings

LINK_MINUTES = 15
PER_HOUR = 5  # links per address per hour


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def send_link(pool: asyncpg.Pool, settings: Settings, email: str, base_url: str) -> None:
    who = await directory.principal_by_email(pool, email)
    if who is None or who.user_id is None:
        return
    recent = await pool.fetchval(
        "SELECT count(*) FROM site.sign_in_links WHERE user_id = $1 "
        "AND created_at > now() - interval '1 hour'",
        who.user_id,
    )
    if recent >= PER_HOUR:
        return
    secret = secrets.token_urlsafe(32)
    await pool.execute(
        "INSERT INTO site.sign_in_links (link_hash, user_id, expires_at) "
        "VALUES ($1, $2, now() + make_interval(mins => $3))",
        _hash(secret),
        who.user_id,
        LINK_MINUTES,
    )
    await mail.send(
        _message(settings, who, f"{base_url}/connexion/lien/{secret}"),
        settings.smtp_host,
        settings.smtp_port,
    )


def _message(settings: Settings, who: Principal, link: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Assistance Manao <{settings.mail_from}>"
    msg["To"] = who.email
    msg["Subject"] = "Votre lien de connexion à l'assistance Manao"
    msg["Message-ID"] = make_msgid(domain=settings.mail_domain)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Auto-Submitted"] = "auto-generated"
    msg["Content-Language"] = "fr"
    msg.set_content(
        f"Bonjour {who.name},\n\n"
        f"Pour vous connecter à l'espace assistance, suivez ce lien (valable "
        f"{LINK_MINUTES} minutes, une seule fois) :\n\n{link}\n\n"
        "Si vous n'avez rien demandé, ignorez ce message.\n\n"
        "L'équipe Assistance Manao\n"
    )
    return msg


async def redeem(pool: asyncpg.Pool, secret: str) -> Principal | None:
    """The user of a valid, unused link (the site then opens their session)."""
    async with pool.acquire() as conn, conn.transaction():
        user_id = await conn.fetchval(
            """UPDATE site.sign_in_links SET used_at = now()
               WHERE link_hash = $1 AND used_at IS NULL AND expires_at > now()
               RETURNING user_id""",
            _hash(secret),
        )
        if user_id is None:
            return None
        who = await directory.principal_by_id(conn, uuid.UUID(str(user_id)))
        if who is None or who.user_id is None:
            return None
    return who
