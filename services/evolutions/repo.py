"""Evolutions storage: the SQL of the schema `evolutions` (the backlog and its requests, the
product managers, releases and documentation pages, reviews, decisions, sent mails), with
`$n` parameters; the callers hold the transaction."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, TypeAlias

import asyncpg

from services.evolutions.models import HandOverIn

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

EVOLUTION_COLUMNS = """id, software, title, summary, status, merged_into, created_at,
    first_reviewed_at, decided_at, decided_by, decided_by_name, reason, specification,
    handed_to, shipped_version, shipped_at"""


# --- the backlog (R9) ---------------------------------------------------------------------------


async def lock_dossier(conn: asyncpg.Connection, dossier_id: Any) -> None:
    """One hand-over of a dossier at a time (until the transaction ends)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"evolutions:{dossier_id}"
    )


async def request_of_dossier(
    conn: asyncpg.Connection, dossier_id: Any, attempt: int
) -> asyncpg.Record | None:
    """The dossier's request of this attempt, else its request still undecided."""
    return await conn.fetchrow(
        """SELECT r.id, r.evolution_id FROM evolutions.requests r
           JOIN evolutions.evolutions e ON e.id = r.evolution_id
           WHERE r.dossier_id = $1 AND (r.attempt = $2 OR e.status IN ('open', 'merged'))
           ORDER BY r.attempt = $2 DESC, r.recorded_at DESC LIMIT 1""",
        dossier_id,
        attempt,
    )


async def insert_evolution(
    conn: asyncpg.Connection,
    evolution_id: uuid.UUID,
    software: str,
    title: str,
    summary: str,
    at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO evolutions.evolutions (id, software, title, summary, created_at)
           VALUES ($1, $2, $3, $4, $5)""",
        evolution_id,
        software,
        title,
        summary,
        at,
    )


async def insert_request(
    conn: asyncpg.Connection,
    request_id: uuid.UUID,
    evolution_id: uuid.UUID,
    order: HandOverIn,
    organisation_name: str | None,
    at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO evolutions.requests (id, evolution_id, dossier_id, attempt, reference,
               software, organisation_id, organisation_name, requester_email, requester_name,
               subject, description, context, need, version, recorded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)""",
        request_id,
        evolution_id,
        order.dossier_id,
        order.attempt,
        order.reference,
        order.software,
        order.organisation_id,
        organisation_name,
        order.requester_email,
        order.requester_name,
        order.subject,
        order.description,
        order.context,
        order.need,
        order.version,
        at,
    )


async def merged_into(conn: Conn, evolution_id: uuid.UUID) -> uuid.UUID | None:
    return await conn.fetchval(
        "SELECT merged_into FROM evolutions.evolutions WHERE id = $1", evolution_id
    )


async def evolution_exists(conn: Conn, evolution_id: uuid.UUID) -> bool:
    return bool(
        await conn.fetchval("SELECT 1 FROM evolutions.evolutions WHERE id = $1", evolution_id)
    )


async def evolution_of_request(conn: Conn, request_id: uuid.UUID) -> uuid.UUID | None:
    return await conn.fetchval(
        "SELECT evolution_id FROM evolutions.requests WHERE id = $1", request_id
    )


async def evolution(
    conn: Conn, evolution_id: uuid.UUID, for_update: bool = False
) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT {EVOLUTION_COLUMNS} FROM evolutions.evolutions WHERE id = $1{lock}",
        evolution_id,
    )


async def evolutions(
    conn: Conn, software: str | None, status: str | None, limit: int, offset: int
) -> tuple[int, list[asyncpg.Record]]:
    """(how many match, this page of them), newest first."""
    where = "($1::text IS NULL OR software = $1) AND ($2::text IS NULL OR status = $2)"
    total = await conn.fetchval(
        f"SELECT count(*) FROM evolutions.evolutions WHERE {where}", software, status
    )
    rows = await conn.fetch(
        f"""SELECT {EVOLUTION_COLUMNS} FROM evolutions.evolutions WHERE {where}
            ORDER BY created_at DESC, id LIMIT $3 OFFSET $4""",
        software,
        status,
        limit,
        offset,
    )
    return total, rows


async def requests_of(
    conn: Conn, evolution_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Each evolution's requests, oldest first."""
    rows = await conn.fetch(
        """SELECT * FROM evolutions.requests WHERE evolution_id = ANY($1::uuid[])
           ORDER BY recorded_at, id""",
        evolution_ids,
    )
    found: dict[uuid.UUID, list[dict[str, Any]]] = {i: [] for i in evolution_ids}
    for row in rows:
        found[row["evolution_id"]].append(dict(row))
    return found


async def merge(conn: asyncpg.Connection, target_id: uuid.UUID, moving: list[uuid.UUID]) -> None:
    """The requests of `moving` join `target_id`, which they are merged into."""
    await conn.execute(
        "UPDATE evolutions.requests SET evolution_id = $1 WHERE evolution_id = ANY($2::uuid[])",
        target_id,
        moving,
    )
    await conn.execute(
        """UPDATE evolutions.evolutions SET status = 'merged', merged_into = $1
           WHERE id = ANY($2::uuid[])""",
        target_id,
        moving,
    )


async def retitle(
    conn: asyncpg.Connection, evolution_id: uuid.UUID, title: str | None, summary: str | None
) -> None:
    await conn.execute(
        """UPDATE evolutions.evolutions SET title = coalesce($2, title),
               summary = coalesce($3, summary) WHERE id = $1""",
        evolution_id,
        title,
        summary,
    )


# --- product managers of a software (R9: who decides) -------------------------------------------


async def assign_product_manager(conn: Conn, software: str, user_id: uuid.UUID) -> None:
    await conn.execute(
        """INSERT INTO evolutions.product_managers (software, user_id) VALUES ($1, $2)
           ON CONFLICT DO NOTHING""",
        software,
        user_id,
    )


async def unassign_product_manager(conn: Conn, software: str, user_id: uuid.UUID) -> bool:
    result = await conn.execute(
        "DELETE FROM evolutions.product_managers WHERE software = $1 AND user_id = $2",
        software,
        user_id,
    )
    return bool(result.endswith(" 1"))


async def product_managers(conn: Conn, software: str) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT user_id FROM evolutions.product_managers WHERE software = $1 ORDER BY assigned_at",
        software,
    )
    return [r["user_id"] for r in rows]


async def is_product_manager(conn: Conn, software: str, user_id: uuid.UUID | None) -> bool:
    if user_id is None:
        return False
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM evolutions.product_managers WHERE software = $1 AND user_id = $2",
            software,
            user_id,
        )
    )


# --- releases and documentation (R11, R12) ------------------------------------------------------


async def lock_release(conn: asyncpg.Connection, software: str, version: str) -> None:
    """One declaration of a version at a time (until the transaction ends)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"evolutions:release:{software}:{version}",
    )


async def release(conn: Conn, software: str, version: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM evolutions.releases WHERE software = $1 AND version = $2",
        software,
        version,
    )


async def releases_full(conn: Conn, software: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM evolutions.releases WHERE software = $1 ORDER BY released_at DESC",
        software,
    )


async def insert_release(
    conn: asyncpg.Connection,
    software: str,
    version: str,
    *,
    notes: str,
    released_at: datetime,
    released_by: uuid.UUID | None,
    body_hash: str,
    evolution_ids: list[uuid.UUID],
) -> None:
    await conn.execute(
        """INSERT INTO evolutions.releases
               (software, version, notes, released_at, released_by, body_hash, evolution_ids)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        software,
        version,
        notes,
        released_at,
        released_by,
        body_hash,
        evolution_ids,
    )


async def set_notified_requests(
    conn: asyncpg.Connection, software: str, version: str, notified: int
) -> None:
    await conn.execute(
        """UPDATE evolutions.releases SET notified_requests = $3
           WHERE software = $1 AND version = $2""",
        software,
        version,
        notified,
    )


async def previous_version(conn: Conn, software: str, version: str) -> str | None:
    """The latest release of the software other than `version`."""
    return await conn.fetchval(
        """SELECT version FROM evolutions.releases WHERE software = $1 AND version <> $2
           ORDER BY released_at DESC LIMIT 1""",
        software,
        version,
    )


async def mark_shipped(
    conn: asyncpg.Connection, evolution_id: uuid.UUID, version: str, at: datetime
) -> None:
    await conn.execute(
        """UPDATE evolutions.evolutions SET shipped_version = $2, shipped_at = $3
           WHERE id = $1 AND shipped_version IS NULL""",
        evolution_id,
        version,
        at,
    )


async def record_shipment(conn: asyncpg.Connection, request_id: uuid.UUID, version: str) -> bool:
    """True the first time this request is shipped in this version (it is told once)."""
    return bool(
        await conn.fetchval(
            """INSERT INTO evolutions.shipments (request_id, version) VALUES ($1, $2)
               ON CONFLICT DO NOTHING RETURNING 1""",
            request_id,
            version,
        )
    )


async def insert_doc_page(
    conn: asyncpg.Connection,
    software: str,
    version: str,
    slug: str,
    title: str,
    markdown: str,
    html: str,
) -> None:
    await conn.execute(
        """INSERT INTO evolutions.doc_pages
               (software, version, slug, title, markdown, html, published_in)
           VALUES ($1, $2, $3, $4, $5, $6, $2)""",
        software,
        version,
        slug,
        title,
        markdown,
        html,
    )


async def carry_doc_pages(
    conn: asyncpg.Connection, software: str, previous: str, version: str, except_slugs: list[str]
) -> None:
    """R11: the previous version's pages not rewritten for this one are carried over."""
    await conn.execute(
        """INSERT INTO evolutions.doc_pages
               (software, version, slug, title, markdown, html, published_in)
           SELECT software, $3, slug, title, markdown, html, published_in
           FROM evolutions.doc_pages
           WHERE software = $1 AND version = $2 AND NOT (slug = ANY($4::text[]))""",
        software,
        previous,
        version,
        except_slugs,
    )


async def doc_slugs(conn: Conn, software: str, version: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT slug FROM evolutions.doc_pages WHERE software = $1 AND version = $2 ORDER BY slug",
        software,
        version,
    )
    return [r["slug"] for r in rows]


async def releases_of(conn: Conn, software: str) -> list[asyncpg.Record]:
    """The software's releases, newest first."""
    return await conn.fetch(
        """SELECT version, released_at FROM evolutions.releases WHERE software = $1
           ORDER BY released_at DESC, version DESC""",
        software,
    )


async def doc_pages_of(conn: Conn, software: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT version, slug, title, published_in FROM evolutions.doc_pages
           WHERE software = $1 ORDER BY title, slug""",
        software,
    )


async def latest_version(conn: Conn, software: str) -> str | None:
    return await conn.fetchval(
        """SELECT version FROM evolutions.releases WHERE software = $1
           ORDER BY released_at DESC, version DESC LIMIT 1""",
        software,
    )


async def doc_page(conn: Conn, software: str, version: str, slug: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT title, markdown, html, published_in FROM evolutions.doc_pages
           WHERE software = $1 AND version = $2 AND slug = $3""",
        software,
        version,
        slug,
    )


async def releases_between(
    conn: Conn, software: str | None, since: date, until: date, zone: str
) -> list[asyncpg.Record]:
    """Releases of one software (or all) on days [since, until) in `zone`, newest first."""
    return await conn.fetch(
        """SELECT software, version, notes, released_at FROM evolutions.releases
           WHERE ($1::text IS NULL OR software = $1)
             AND (released_at AT TIME ZONE $4)::date >= $2
             AND (released_at AT TIME ZONE $4)::date < $3
           ORDER BY released_at DESC, version DESC""",
        software,
        since,
        until,
        zone,
    )


async def shipped_between(
    conn: Conn, software: str | None, since: date, until: date, zone: str
) -> list[asyncpg.Record]:
    """Evolutions shipped by those releases, newest first."""
    return await conn.fetch(
        """SELECT e.id, e.software, e.title, e.summary, e.shipped_version AS version,
                  e.shipped_at
           FROM evolutions.evolutions e
           JOIN evolutions.releases r
             ON r.software = e.software AND r.version = e.shipped_version
           WHERE ($1::text IS NULL OR e.software = $1)
             AND (r.released_at AT TIME ZONE $4)::date >= $2
             AND (r.released_at AT TIME ZONE $4)::date < $3
           ORDER BY e.shipped_at DESC, e.title""",
        software,
        since,
        until,
        zone,
    )


# --- weekly reviews (R9) ------------------------------------------------------------------------


async def lock_review(conn: asyncpg.Connection, software: str, week: str) -> None:
    """One review built at a time per software and week (until the transaction ends)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"evolutions:review:{software}:{week}",
    )


async def review_of_week(conn: Conn, software: str, week: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM evolutions.reviews WHERE software = $1 AND week = $2", software, week
    )


async def undecided_for_review(
    conn: asyncpg.Connection, software: str, held_at: datetime
) -> list[asyncpg.Record]:
    """The open evolutions of the software recorded by `held_at`, carried-over ones first;
    locked until the transaction ends."""
    return await conn.fetch(
        """SELECT id, title, summary, created_at, first_reviewed_at FROM evolutions.evolutions
           WHERE software = $1 AND status = 'open' AND created_at <= $2
           ORDER BY first_reviewed_at IS NULL, created_at, id
           FOR UPDATE""",
        software,
        held_at,
    )


async def insert_review(
    conn: asyncpg.Connection,
    review_id: uuid.UUID,
    software: str,
    week: str,
    held_at: datetime,
    agenda: dict[str, Any],
    notified: list[str],
) -> None:
    await conn.execute(
        """INSERT INTO evolutions.reviews (id, software, week, held_at, agenda, notified)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        review_id,
        software,
        week,
        held_at,
        agenda,
        notified,
    )


async def mark_reviewed(
    conn: asyncpg.Connection, evolution_ids: list[uuid.UUID], held_at: datetime
) -> None:
    """The evolutions' first review, when they had none."""
    await conn.execute(
        """UPDATE evolutions.evolutions SET first_reviewed_at = $2
           WHERE id = ANY($1::uuid[]) AND first_reviewed_at IS NULL""",
        evolution_ids,
        held_at,
    )


async def review(conn: Conn, review_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM evolutions.reviews WHERE id = $1", review_id)


async def reviews(conn: Conn, software: str | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM evolutions.reviews WHERE ($1::text IS NULL OR software = $1)
           ORDER BY held_at DESC, software LIMIT $2""",
        software,
        limit,
    )


# --- decisions (R9) -----------------------------------------------------------------------------


async def record_decision(
    conn: asyncpg.Connection,
    evolution_id: uuid.UUID,
    *,
    decision: str,
    at: datetime,
    by: uuid.UUID | None,
    by_name: str | None,
    reason: str | None,
    specification: str | None,
    handed_to: list[str],
    title: str | None,
    summary: str | None,
) -> dict[str, Any]:
    """The product manager's decision; answers the evolution's row as it is now."""
    row = await conn.fetchrow(
        """UPDATE evolutions.evolutions
           SET status = $2, decided_at = $3, decided_by = $4, decided_by_name = $5,
               reason = $6, specification = $7, handed_to = $8,
               title = coalesce($9, title), summary = coalesce($10, summary)
           WHERE id = $1
           RETURNING *""",
        evolution_id,
        decision,
        at,
        by,
        by_name,
        reason,
        specification,
        handed_to,
        title,
        summary,
    )
    assert row is not None, evolution_id  # locked by the caller
    return dict(row)


# --- mails --------------------------------------------------------------------------------------


async def mail_sent(conn: Conn, message_id: str) -> bool:
    return bool(
        await conn.fetchval("SELECT 1 FROM evolutions.sent_mail WHERE message_id = $1", message_id)
    )


async def record_sent_mail(conn: Conn, message_id: str, recipient: str, purpose: str) -> None:
    await conn.execute(
        """INSERT INTO evolutions.sent_mail (message_id, recipient, purpose)
           VALUES ($1, $2, $3) ON CONFLICT DO NOTHING""",
        message_id,
        recipient,
        purpose,
    )
