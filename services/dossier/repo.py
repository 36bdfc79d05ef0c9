"""Dossier read-model queries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from assistance.clock import local
from assistance.directory import Principal, Role
from services.dossier.models import DossierOut, DossierSummary, TimelineEntry
from services.intake import repo as intake

_TIMES = ("received_at", "first_response_due", "first_responded_at", "closed_at")


def _visible_to(who: Principal, organisation_id: uuid.UUID | None) -> bool:
    if who.is_staff:
        return True
    return who.role is Role.customer and organisation_id == who.organisation_id


def _common(row: asyncpg.Record) -> dict[str, Any]:
    out = {
        k: row[k] for k in ("id", "reference", "status", "kind", "channel", "software", "subject")
    }
    out.update({k: local(row[k]) for k in _TIMES})
    out["technician"] = (
        {"id": row["technician_id"], "name": row["technician_name"]}
        if row["technician_id"]
        else None
    )
    return out


async def is_visible(
    conn: asyncpg.Pool | asyncpg.Connection, dossier_id: uuid.UUID, who: Principal
) -> bool:
    """Whether the dossier exists for `who` (staff, or a customer of its organisation).

    One accepted by intake but not projected yet (NATS down) exists too: a command then goes
    to its workflow (answered "en cours d'ouverture", 503, until the workflow runs)."""
    row = await conn.fetchrow(
        "SELECT organisation_id FROM dossier.dossiers WHERE id = $1", dossier_id
    )
    if row is None:
        row = await intake.accepted(conn, dossier_id)
    return row is not None and _visible_to(who, row["organisation_id"])


async def get_dossier(
    db: asyncpg.Pool | asyncpg.Connection, dossier_id: uuid.UUID, who: Principal
) -> DossierOut | None:
    """The dossier and its timeline read from one snapshot: read apart, an event projected
    in between would show its timeline entry without its fields (or the reverse)."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            return await get_dossier(conn, dossier_id, who)
    if not db.is_in_transaction():
        async with db.transaction(isolation="repeatable_read", readonly=True):
            return await get_dossier(db, dossier_id, who)
    conn = db
    row = await conn.fetchrow("SELECT * FROM dossier.dossiers WHERE id = $1", dossier_id)
    if row is None or not _visible_to(who, row["organisation_id"]):
        return None
    entries = await conn.fetch(
        """SELECT at, kind, visibility, author, text, data FROM dossier.timeline
           WHERE dossier_id = $1 AND ($2 OR visibility = 'customer')
           ORDER BY seq, at, event_id""",
        dossier_id,
        who.is_staff,
    )
    return DossierOut(
        **_common(row),
        description=row["description"],
        requester={"email": row["requester_email"], "name": row["requester_name"]},
        organisation_id=row["organisation_id"],
        resolution=row["resolution"],
        details=row["details"] if who.is_staff else {},
        timeline=[TimelineEntry(**{**dict(e), "at": local(e["at"])}) for e in entries],
    )


async def just_deposited(
    conn: asyncpg.Pool | asyncpg.Connection, dossier_id: uuid.UUID, who: Principal
) -> DossierOut | None:
    """A dossier accepted by intake that the read model does not hold yet (its `received`
    event waits for NATS): intake answers from its own module (services/intake/repo.py), and
    the dossier shows as new, with its reception as its only entry (decision 0014)."""
    row = await intake.accepted(conn, dossier_id)
    if row is None or not _visible_to(who, row["organisation_id"]):
        return None
    received = TimelineEntry(
        at=local(row["received_at"]),
        kind="received",
        visibility="customer",
        author=row["requester_name"],
        text=row["description"],
        data={"channel": row["channel"], "subject": row["subject"]},
    )
    return DossierOut(
        id=row["id"],
        reference=row["reference"],
        status="new",
        kind=None,
        channel=row["channel"],
        software=row["software"],
        subject=row["subject"],
        description=row["description"],
        requester={"email": row["requester_email"], "name": row["requester_name"]},
        organisation_id=row["organisation_id"],
        received_at=local(row["received_at"]),
        first_response_due=local(row["first_response_due"]),
        first_responded_at=None,
        technician=None,
        closed_at=None,
        resolution=None,
        timeline=[received],
    )


async def list_dossiers(
    conn: asyncpg.Pool | asyncpg.Connection,
    who: Principal,
    *,
    status: str | None,
    q: str | None,
    organisation: uuid.UUID | None,
    limit: int,
    offset: int,
) -> tuple[list[DossierSummary], int]:
    """R10: open and closed dossiers alike; full-text search with the French configuration."""
    if who.role is Role.customer:
        organisation = who.organisation_id
    clauses: list[str] = ["TRUE"]
    args: list[Any] = []
    if status:
        args.append(status)
        clauses.append(f"status = ${len(args)}")
    if organisation:
        args.append(organisation)
        clauses.append(f"organisation_id = ${len(args)}")
    order = "received_at DESC, reference DESC"
    if q:
        args.append(q)
        clauses.append(
            f"(search @@ websearch_to_tsquery('french', ${len(args)}) "
            f"OR reference = upper(${len(args)}))"
        )
        order = f"ts_rank(search, websearch_to_tsquery('french', ${len(args)})) DESC, " + order
    where = " AND ".join(clauses)
    total = await conn.fetchval(f"SELECT count(*) FROM dossier.dossiers WHERE {where}", *args)
    rows = await conn.fetch(
        f"SELECT * FROM dossier.dossiers WHERE {where} ORDER BY {order} "
        f"LIMIT {int(limit)} OFFSET {int(offset)}",
        *args,
    )
    return [DossierSummary(**_common(r)) for r in rows], total


async def open_dossiers(conn: asyncpg.Pool | asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM dossier.dossiers WHERE status <> 'closed' ORDER BY received_at, reference"
    )


async def breaches(
    conn: asyncpg.Pool | asyncpg.Connection,
    *,
    since: datetime | None,
    until: datetime | None,
    software: str | None,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT b.*, d.first_responded_at FROM dossier.breaches b
           LEFT JOIN dossier.dossiers d ON d.id = b.dossier_id
           WHERE ($1::timestamptz IS NULL OR b.breached_at >= $1)
             AND ($2::timestamptz IS NULL OR b.breached_at < $2)
             AND ($3::text IS NULL OR b.software = $3)
           ORDER BY b.breached_at, b.reference""",
        since,
        until,
        software,
    )


async def activity(
    conn: asyncpg.Pool | asyncpg.Connection, *, since: datetime, timezone: str
) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    """Dossiers received since `since`, counted per local week, software, channel and kind,
    with their first-response outcome (R3); and the breaches recorded per local week."""
    counts = await conn.fetch(
        """SELECT (date_trunc('week', received_at AT TIME ZONE $2))::date AS week,
                  software, channel, coalesce(kind, 'unclassified') AS kind,
                  count(*) AS total,
                  count(*) FILTER (WHERE first_responded_at <= first_response_due) AS on_time,
                  count(*) FILTER (
                      WHERE first_responded_at > first_response_due
                         OR (first_responded_at IS NULL AND first_response_due <= now())
                  ) AS late
           FROM dossier.dossiers WHERE received_at >= $1
           GROUP BY 1, 2, 3, 4""",
        since,
        timezone,
    )
    breaches = await conn.fetch(
        """SELECT (date_trunc('week', breached_at AT TIME ZONE $2))::date AS week, count(*) AS n
           FROM dossier.breaches WHERE breached_at >= $1 GROUP BY 1""",
        since,
        timezone,
    )
    return counts, breaches
