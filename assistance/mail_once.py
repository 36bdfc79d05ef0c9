"""Outgoing mail sent at most once in practice (issue 11, item 8; decision 0015).

Every outgoing mail has a stable Message-ID and a row keyed by it. The row is committed in
state `sending`, with a lease, BEFORE the SMTP transaction, and marked `sent` as soon as the
server has accepted the message (before QUIT). So:

- a retry (an activity's, an outbox row's) finds `sent` and sends nothing;
- a retry while another attempt holds the lease waits (`MailInFlight`, retryable);
- after a crash between the server's acceptance and the `sent` mark, the row stays `sending`
  and is sent again only once its lease has run out, with the same Message-ID (receivers drop
  the duplicate); the window is the few milliseconds between the server's `250` and the mark;
- an SMTP server that refused the message (or could not be reached) gave it to nobody: the
  lease is released at once and the next attempt sends.

The rows live in a table with the ledger's columns (`message_id` primary key, `state`,
`lease_until`, `attempts`, `sent_at`): each service's own (`dossier.outbound_mail`) or the
shared `bus.sent_mail` (source column, like `bus.outbox`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import asyncpg

from assistance import metrics
from assistance.settings import Settings

log = logging.getLogger(__name__)

SHARED = "bus.sent_mail"
DEFAULT_LEASE_S = 300.0
IN_FLIGHT_WAIT_S = 30.0
_TABLE = re.compile(r"^[a-z_]+\.[a-z_]+$")

# The SMTP server said no, or could not be reached: nobody has the message.
_NOT_DELIVERED = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPRecipientsRefused,
    aiosmtplib.SMTPSenderRefused,
    aiosmtplib.SMTPDataError,
    aiosmtplib.SMTPHeloError,
    ConnectionRefusedError,
)

# The server answered no (not: could not be reached).
_REFUSED = (
    aiosmtplib.SMTPRecipientsRefused,
    aiosmtplib.SMTPSenderRefused,
    aiosmtplib.SMTPDataError,
)


class MailInFlight(RuntimeError):
    """Another attempt holds this mail's lease: try again later (it may be sent by then)."""


@dataclass(frozen=True)
class Outgoing:
    """Where a mail's row lives and what else it records (columns of that table)."""

    table: str = SHARED
    columns: dict[str, Any] = field(default_factory=dict)
    lease_s: float = DEFAULT_LEASE_S


async def send_once(
    pool: asyncpg.Pool, message: EmailMessage, host: str, port: int, out: Outgoing
) -> bool:
    """Send `message` unless its Message-ID was sent; True if this call sent it."""
    message_id = str(message["Message-ID"] or "")
    if not message_id:
        raise ValueError("a mail sent once needs a Message-ID")
    if not await claim(pool, message_id, out):
        return False
    try:
        await _smtp_transaction(
            message, host, port, lambda: _mark_sent_patiently(pool, message_id, out)
        )
    except _NOT_DELIVERED as exc:
        await release(pool, message_id, out)
        if isinstance(exc, _REFUSED):
            metrics.MAILS_REFUSED.add(1, {"ledger": out.table})
        raise
    metrics.MAILS_SENT.add(1, {"ledger": out.table})
    return True


async def send_shared(
    pool: asyncpg.Pool, settings: Settings, source: str, message: EmailMessage
) -> bool:
    """`send_once` with the shared ledger `bus.sent_mail`, for a service's mail (outbox)."""
    out = Outgoing(
        columns={
            "source": source,
            "recipient": str(message["To"] or ""),
            "subject": str(message["Subject"] or ""),
        },
        lease_s=settings.mail_sending_lease_seconds,
    )
    return await send_once(pool, message, settings.smtp_host, settings.smtp_port, out)


async def claim(pool: asyncpg.Pool, message_id: str, out: Outgoing) -> bool:
    """Commit the row in `sending` with a fresh lease; False if it was sent already.

    While another attempt holds the lease, wait for it (up to `IN_FLIGHT_WAIT_S`): it is
    usually done in a moment; then raise MailInFlight (the caller retries later)."""
    deadline = asyncio.get_running_loop().time() + IN_FLIGHT_WAIT_S
    while True:
        try:
            return await _claim_once(pool, message_id, out)
        except MailInFlight:
            if asyncio.get_running_loop().time() >= deadline:
                raise
            await asyncio.sleep(0.2)


async def _claim_once(pool: asyncpg.Pool, message_id: str, out: Outgoing) -> bool:
    table = _checked(out.table)
    names = ["message_id", *out.columns]
    values = [message_id, *out.columns.values()]
    placeholders = ", ".join(f"${i + 1}" for i in range(len(names)))
    lease = len(values) + 1
    row = await pool.fetchrow(
        f"""INSERT INTO {table} AS t ({", ".join(names)}, state, lease_until, attempts, sent_at)
            VALUES ({placeholders}, 'sending', now() + make_interval(secs => ${lease}), 1, NULL)
            ON CONFLICT (message_id) DO UPDATE
               SET state = 'sending', attempts = t.attempts + 1,
                   lease_until = now() + make_interval(secs => ${lease})
             WHERE t.state = 'sending' AND t.lease_until <= now()
            RETURNING attempts""",
        *values,
        out.lease_s,
    )
    if row is not None:
        if row["attempts"] > 1:
            log.warning("mail %s: lease over, sending again (same Message-ID)", message_id)
        return True
    state = await pool.fetchval(f"SELECT state FROM {table} WHERE message_id = $1", message_id)
    if state == "sent":
        return False
    raise MailInFlight(f"mail {message_id} is being sent by another attempt")


async def mark_sent(pool: asyncpg.Pool, message_id: str, out: Outgoing) -> None:
    await pool.execute(
        f"UPDATE {_checked(out.table)} SET state = 'sent', sent_at = now(), lease_until = NULL "
        "WHERE message_id = $1",
        message_id,
    )


async def _mark_sent_patiently(pool: asyncpg.Pool, message_id: str, out: Outgoing) -> None:
    """The server has the message: record it even if PostgreSQL is restarting right now
    (within most of the lease; past it, a retry would send again)."""
    deadline = asyncio.get_running_loop().time() + out.lease_s * 0.8
    delay = 0.2
    while True:
        try:
            await mark_sent(pool, message_id, out)
            return
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            if asyncio.get_running_loop().time() + delay > deadline:
                raise
            log.warning("mail %s sent, not yet marked (%r): retrying", message_id, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def release(pool: asyncpg.Pool, message_id: str, out: Outgoing) -> None:
    """The server refused the mail: the next attempt may send at once."""
    await pool.execute(
        f"UPDATE {_checked(out.table)} SET lease_until = now() "
        "WHERE message_id = $1 AND state = 'sending'",
        message_id,
    )


async def _smtp_transaction(message: EmailMessage, host: str, port: int, accepted: Any) -> None:
    """One SMTP transaction; `accepted()` runs once the server took the message, before QUIT
    (a QUIT that fails changes nothing: the message is with the server)."""
    client = aiosmtplib.SMTP(hostname=host, port=port, timeout=30)
    await client.connect()
    try:
        await client.send_message(message)
        await accepted()
    finally:
        try:
            await client.quit()
        except aiosmtplib.SMTPException:
            client.close()


def _checked(table: str) -> str:
    if not _TABLE.match(table):
        raise ValueError(f"not a table name: {table!r}")
    return table
