"""Mail storage (intake schema): raw messages, attachments, quarantine, ledger, bounces, IMAP.

SQL only, `$n` parameters; the caller holds the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from services.intake.mail.parse import ParsedMail
from services.intake.mail.rules import REASONS

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


async def lock_key(conn: asyncpg.Connection, dedupe_key: str) -> None:
    """Serialise deliveries of the same message (transaction-scoped advisory lock)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", dedupe_key)


async def find_by_key(conn: Conn, dedupe_key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, outcome, dossier_id, reference FROM intake.mail_messages WHERE dedupe_key = $1",
        dedupe_key,
    )


async def count_duplicate(conn: asyncpg.Connection, mail_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE intake.mail_messages SET duplicates = duplicates + 1 WHERE id = $1", mail_id
    )


async def recent_from(conn: Conn, address: str, since: datetime) -> int:
    """Messages stored from this sender since `since` (the rate limit)."""
    return await conn.fetchval(
        "SELECT count(*) FROM intake.mail_messages "
        "WHERE lower(from_address) = lower($1) AND received_at >= $2",
        address,
        since,
    )


async def store_message(
    conn: asyncpg.Connection,
    *,
    mail_id: uuid.UUID,
    dedupe_key: str,
    parsed: ParsedMail,
    raw: bytes,
    sha256: str,
    source: str,
    envelope_from: str | None,
    envelope_to: list[str],
    peer: str | None,
    received_at: datetime,
    details: dict[str, Any],
    outcome: str,
    dossier_id: uuid.UUID | None = None,
    reference: str | None = None,
    threaded_by: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO intake.mail_messages (id, dedupe_key, message_id, source, envelope_from,
               envelope_to, peer, from_address, from_name, subject, sent_at, received_at,
               size_bytes, sha256, raw, text_body, html_body, details, outcome, dossier_id,
               reference, threaded_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
               $18, $19, $20, $21, $22)""",
        mail_id,
        dedupe_key,
        parsed.message_id,
        source,
        envelope_from,
        envelope_to,
        peer,
        parsed.from_address,
        parsed.from_name[:500],
        parsed.subject[:2000],
        parsed.date,
        received_at,
        len(raw),
        sha256,
        raw,
        parsed.text,
        parsed.html,
        details,
        outcome,
        dossier_id,
        reference,
        threaded_by,
    )
    for position, att in enumerate(parsed.attachments, start=1):
        await conn.execute(
            """INSERT INTO intake.mail_attachments (id, mail_id, position, filename,
                   declared_type, sniffed_type, size_bytes, sha256, content, dropped, dangerous,
                   inline, content_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
            uuid.uuid4(),
            mail_id,
            position,
            att.filename,
            att.declared_type,
            att.sniffed_type,
            att.size,
            att.sha256,
            att.content,
            att.dropped,
            att.dangerous,
            att.inline,
            att.content_id,
        )


async def attachment_refs(conn: Conn, mail_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT id, filename, sniffed_type, size_bytes, dropped, dangerous, inline,
                  inline AND content_id IS NOT NULL AS embedded
           FROM intake.mail_attachments WHERE mail_id = $1 ORDER BY position""",
        mail_id,
    )
    return [
        {
            "id": str(r["id"]),
            "filename": r["filename"],
            "content_type": r["sniffed_type"],
            "size": r["size_bytes"],
            "dropped": r["dropped"],
            "dangerous": r["dangerous"],
            "inline": r["inline"],
            "embedded": r["embedded"],
            "url": f"/api/v1/mail/attachments/{r['id']}",
        }
        for r in rows
    ]


async def quarantine(
    conn: asyncpg.Connection,
    mail_id: uuid.UUID,
    reason: str,
    detail: str,
    reference: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO intake.mail_quarantine (mail_id, reason, detail, reference)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (mail_id) DO UPDATE SET reason = EXCLUDED.reason,
               detail = EXCLUDED.detail, reference = EXCLUDED.reference,
               status = 'pending', resolved_at = NULL, resolved_by = NULL, resolution = NULL""",
        mail_id,
        reason,
        detail,
        reference,
    )


async def ledger_entry(
    conn: Conn,
    source: str,
    entry: str,
    mail_id: uuid.UUID | None = None,
    reason: str | None = None,
    envelope_from: str | None = None,
    size_bytes: int | None = None,
    at: datetime | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO intake.mail_ledger (source, entry, mail_id, reason, envelope_from,
               size_bytes, at) VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()))""",
        source,
        entry,
        mail_id,
        reason,
        envelope_from,
        size_bytes,
        at,
    )


async def request_by_reference(conn: Conn, reference: str) -> asyncpg.Record | None:
    """The dossier a reference names (intake owns the reference → id mapping)."""
    return await conn.fetchrow(
        "SELECT id, reference, requester_email, requester_name, organisation_id, channel "
        "FROM intake.requests WHERE reference = $1",
        reference,
    )


async def request_by_id(conn: Conn, dossier_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, reference, requester_email, requester_name, organisation_id, channel "
        "FROM intake.requests WHERE id = $1",
        dossier_id,
    )


async def mark_bouncing(
    conn: asyncpg.Connection,
    address: str,
    status: str,
    diagnostic: str,
    reference: str | None,
    mail_id: uuid.UUID,
    at: datetime,
) -> bool:
    """Record a bounce; True when the address was not known to bounce (alert once)."""
    row = await conn.fetchrow(
        """INSERT INTO intake.mail_bounces (address, first_at, last_at, status, diagnostic,
               reference, last_mail_id)
           VALUES (lower($1), $2, $2, $3, $4, $5, $6)
           ON CONFLICT (address) DO UPDATE SET last_at = EXCLUDED.last_at,
               count = intake.mail_bounces.count + 1, status = EXCLUDED.status,
               diagnostic = EXCLUDED.diagnostic,
               reference = coalesce(EXCLUDED.reference, intake.mail_bounces.reference),
               last_mail_id = EXCLUDED.last_mail_id, bouncing = true,
               alerted_at = CASE WHEN intake.mail_bounces.bouncing
                            THEN intake.mail_bounces.alerted_at END
           RETURNING alerted_at""",
        address,
        at,
        status,
        diagnostic[:500],
        reference,
        mail_id,
    )
    if row["alerted_at"] is not None:
        return False
    await conn.execute(
        "UPDATE intake.mail_bounces SET alerted_at = $2 WHERE address = lower($1)", address, at
    )
    return True


async def imap_position(conn: Conn, account: str, folder: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT uidvalidity, last_uid FROM intake.imap_state WHERE account = $1 AND folder = $2",
        account,
        folder,
    )


async def imap_advance(conn: Conn, account: str, folder: str, uidvalidity: int, uid: int) -> None:
    await conn.execute(
        """INSERT INTO intake.imap_state (account, folder, uidvalidity, last_uid)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (account, folder) DO UPDATE SET uidvalidity = EXCLUDED.uidvalidity,
               last_uid = CASE WHEN intake.imap_state.uidvalidity = EXCLUDED.uidvalidity
                          THEN greatest(intake.imap_state.last_uid, EXCLUDED.last_uid)
                          ELSE EXCLUDED.last_uid END,
               updated_at = now()""",
        account,
        folder,
        uidvalidity,
        uid,
    )


async def requarantine(
    pool: asyncpg.Pool, mail_id: uuid.UUID, reason: str, reference: str | None
) -> None:
    """A reply whose dossier could not take it after all goes (back) to quarantine."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT outcome, reference FROM intake.mail_messages WHERE id = $1 FOR UPDATE",
            mail_id,
        )
        if row is None:
            return
        await conn.execute(
            "UPDATE intake.mail_messages SET outcome = 'quarantined' WHERE id = $1", mail_id
        )
        await conn.execute(
            "UPDATE intake.mail_ledger SET entry = 'quarantined', reason = $2 "
            "WHERE mail_id = $1 AND entry = 'joined'",
            mail_id,
            reason,
        )
        await quarantine(conn, mail_id, reason, REASONS[reason], reference or row["reference"])


async def opened_since(
    conn: asyncpg.Connection, sender: str, subject: str, since: datetime
) -> asyncpg.Record | None:
    """The latest dossier a mail from `sender` with this subject opened since `since`."""
    return await conn.fetchrow(
        """SELECT dossier_id, reference FROM intake.mail_messages
           WHERE lower(from_address) = lower($1) AND outcome = 'opened'
             AND dossier_id IS NOT NULL AND received_at >= $2
             AND lower(btrim(subject)) = lower(btrim($3))
           ORDER BY received_at DESC LIMIT 1""",
        sender,
        since,
        subject,
    )


async def link_dossier(
    conn: asyncpg.Connection,
    mail_id: uuid.UUID,
    dossier_id: uuid.UUID,
    reference: str,
    threaded_by: str | None = None,
) -> None:
    """The mail belongs to this dossier now (`threaded_by`: who decided, when not the rules)."""
    if threaded_by is None:
        await conn.execute(
            "UPDATE intake.mail_messages SET dossier_id = $2, reference = $3 WHERE id = $1",
            mail_id,
            dossier_id,
            reference,
        )
        return
    await conn.execute(
        "UPDATE intake.mail_messages SET dossier_id = $2, reference = $3, threaded_by = $4 "
        "WHERE id = $1",
        mail_id,
        dossier_id,
        reference,
        threaded_by,
    )


# --- what the HTTP API reads and writes (api.py) -------------------------------------------------

# The ledger's period: [since, until), either end open when not given.
WINDOW = (
    "{column} >= coalesce($1::timestamptz, '-infinity') "
    "AND {column} < coalesce($2::timestamptz, 'infinity')"
)


@dataclass
class LedgerCounts:
    entries: dict[str, int]  # per ledger entry (opened, joined, quarantined, duplicate, rejected)
    rejected: dict[str, int]  # refusals at reception, per reason
    by_source: dict[str, int]  # deliveries answered, per source
    quarantine: list[asyncpg.Record]  # (status, reason, n) of the quarantined ones
    stored: int  # messages stored


async def ledger_counts(
    conn: asyncpg.Connection, since: datetime | None, until: datetime | None
) -> LedgerCounts:
    window = WINDOW.format(column="at")
    entries = {
        r["entry"]: r["n"]
        for r in await conn.fetch(
            f"SELECT entry, count(*) AS n FROM intake.mail_ledger WHERE {window} GROUP BY entry",
            since,
            until,
        )
    }
    rejected = {
        r["reason"] or "unknown": r["n"]
        for r in await conn.fetch(
            f"SELECT reason, count(*) AS n FROM intake.mail_ledger WHERE {window} "
            "AND entry = 'rejected' GROUP BY reason",
            since,
            until,
        )
    }
    by_source = {
        r["source"]: r["n"]
        for r in await conn.fetch(
            f"SELECT source, count(*) AS n FROM intake.mail_ledger WHERE {window} "
            "AND entry <> 'rejected' GROUP BY source",
            since,
            until,
        )
    }
    quarantine = await conn.fetch(
        f"""SELECT q.status, q.reason, count(*) AS n FROM intake.mail_ledger l
           JOIN intake.mail_quarantine q ON q.mail_id = l.mail_id
           WHERE l.entry = 'quarantined' AND {WINDOW.format(column="l.at")}
           GROUP BY q.status, q.reason""",
        since,
        until,
    )
    stored = await conn.fetchval(
        "SELECT count(*) FROM intake.mail_messages WHERE " + WINDOW.format(column="received_at"),
        since,
        until,
    )
    return LedgerCounts(entries, rejected, by_source, list(quarantine), int(stored))


_MAIL = """SELECT m.*, q.reason AS q_reason, q.detail AS q_detail, q.reference AS q_reference,
               q.status AS q_status, q.created_at AS q_created_at,
               q.resolved_at AS q_resolved_at, q.resolution AS q_resolution
           FROM intake.mail_messages m LEFT JOIN intake.mail_quarantine q ON q.mail_id = m.id"""

_LIST_COLUMNS = """SELECT m.id, m.received_at, m.source, m.from_address, m.from_name, m.subject,
               m.size_bytes,
               (SELECT count(*) FROM intake.mail_attachments a WHERE a.mail_id = m.id)
               AS attachments"""


async def stored_mail(conn: Conn, mail_id: uuid.UUID) -> asyncpg.Record | None:
    """A stored mail with its quarantine (`q_*` columns, NULL when it was not quarantined)."""
    return await conn.fetchrow(f"{_MAIL} WHERE m.id = $1", mail_id)


async def attachments_of(conn: Conn, mail_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, filename, sniffed_type, declared_type, size_bytes, content IS NOT NULL
                  AS kept, dropped, dangerous, inline
           FROM intake.mail_attachments WHERE mail_id = $1 ORDER BY position""",
        mail_id,
    )


async def quarantined(
    conn: Conn, status: str, reason: str | None, limit: int, offset: int
) -> list[asyncpg.Record]:
    """Quarantined mails (`status` or `all`), newest first, with their `q_*` columns."""
    return await conn.fetch(
        f"""{_MAIL.replace("SELECT m.*", _LIST_COLUMNS)}
            WHERE q.mail_id IS NOT NULL AND ($1 = 'all' OR q.status = $1)
              AND ($2::text IS NULL OR q.reason = $2)
            ORDER BY m.received_at DESC LIMIT $3 OFFSET $4""",
        status,
        reason,
        limit,
        offset,
    )


async def raw_of(conn: Conn, mail_id: uuid.UUID) -> bytes | None:
    return await conn.fetchval("SELECT raw FROM intake.mail_messages WHERE id = $1", mail_id)


async def lock_quarantined(conn: asyncpg.Connection, mail_id: uuid.UUID) -> asyncpg.Record | None:
    """The quarantined mail and its quarantine status, locked until the transaction ends."""
    return await conn.fetchrow(
        """SELECT q.status, q.resolution, m.* FROM intake.mail_quarantine q
           JOIN intake.mail_messages m ON m.id = q.mail_id
           WHERE q.mail_id = $1 FOR UPDATE OF q""",
        mail_id,
    )


async def resolve_quarantine(
    conn: asyncpg.Connection,
    mail_id: uuid.UUID,
    status: str,
    by: uuid.UUID | None,
    resolution: dict[str, Any],
) -> None:
    await conn.execute(
        """UPDATE intake.mail_quarantine SET status = $2, resolved_at = now(), resolved_by = $3,
               resolution = $4 WHERE mail_id = $1""",
        mail_id,
        status,
        by,
        resolution,
    )


async def bounces(conn: Conn, bouncing: bool) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM intake.mail_bounces WHERE bouncing = $1 ORDER BY last_at DESC LIMIT 500",
        bouncing,
    )


async def clear_bounce(conn: Conn, address: str) -> bool:
    """The address works again (the next bounce alerts again); False when it is unknown."""
    done = await conn.execute(
        "UPDATE intake.mail_bounces SET bouncing = false, alerted_at = NULL "
        "WHERE address = lower($1)",
        address,
    )
    return not done.endswith(" 0")


async def attachment(conn: Conn, attachment_id: uuid.UUID) -> asyncpg.Record | None:
    """An attachment with the dossier and organisation of its mail (who may download it)."""
    return await conn.fetchrow(
        """SELECT a.filename, a.sniffed_type, a.dangerous, a.content, a.dropped,
                  m.dossier_id, r.organisation_id
           FROM intake.mail_attachments a JOIN intake.mail_messages m ON m.id = a.mail_id
           LEFT JOIN intake.requests r ON r.id = m.dossier_id
           WHERE a.id = $1""",
        attachment_id,
    )
