"""Dossier read-model queries."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from assistance import outbox
from assistance.clock import local
from assistance.directory import Principal, Role
from services.dossier.models import DossierOut, DossierSummary, TimelineEntry
from services.dossier.projection import RECEIVED, received_fields

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


async def _deposited(
    conn: asyncpg.Pool | asyncpg.Connection, dossier_id: uuid.UUID
) -> dict[str, Any] | None:
    """A dossier intake accepted (R13) as its `intake.request.received` event tells it, read
    from the kernel's outbox, where intake enqueued it in the transaction of its 201: for a
    dossier the read model does not hold yet (NATS down). The outbox keeps the event while it
    is pending, and `OUTBOX_RETENTION_DAYS` once sent (assistance/outbox.py `event`)."""
    event = await outbox.event(conn, f"{dossier_id}:received")
    if event is None or event.type != RECEIVED:
        return None
    return received_fields(event.data)


async def facts(
    conn: asyncpg.Pool | asyncpg.Connection, dossier_id: uuid.UUID
) -> dict[str, Any] | None:
    """How the dossier came (`channel`), who asked (`requester_email`, `organisation_id`) and
    when it closed (`closed_at`), from the read model; for a dossier intake accepted but the
    read model does not hold yet (its acknowledgement is written at once; NATS may be down),
    from its `received` event. None: no such dossier."""
    row = await conn.fetchrow(
        """SELECT channel, requester_email, organisation_id, closed_at FROM dossier.dossiers
           WHERE id = $1""",
        dossier_id,
    )
    return dict(row) if row is not None else await _deposited(conn, dossier_id)


async def is_visible(
    conn: asyncpg.Pool | asyncpg.Connection, dossier_id: uuid.UUID, who: Principal
) -> bool:
    """Whether the dossier exists for `who` (staff, or a customer of its organisation).

    One accepted by intake but not projected yet (NATS down) exists too: a command then goes
    to its workflow (answered "en cours d'ouverture", 503, until the workflow runs)."""
    found = await facts(conn, dossier_id)
    return found is not None and _visible_to(who, found.get("organisation_id"))


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
    event waits for NATS): read from that event, it shows as new, with its reception as its
    only entry (decision 0014)."""
    row = await _deposited(conn, dossier_id)
    if row is None or not _visible_to(who, row.get("organisation_id")):
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
        id=dossier_id,
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


@dataclass(frozen=True)
class Filters:
    """The optional filters of the list and the queue (issue 14); `None` filters nothing.

    `technician`: "me" (the caller), "none" (nobody follows it), or a user id."""

    status: str | None = None
    open: bool | None = None
    technician: str | None = None
    software: str | None = None
    kind: str | None = None
    organisation: uuid.UUID | None = None

    def where(self, who: Principal, args: list[Any], alias: str = "d") -> list[str]:
        """SQL conditions on `alias`, their values appended to `args`."""
        clauses: list[str] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if self.status:
            clauses.append(f"{alias}.status = {arg(self.status)}")
        if self.open is not None:
            clauses.append(f"{alias}.status {'<>' if self.open else '='} 'closed'")
        if self.technician == "none":
            clauses.append(f"{alias}.technician_id IS NULL")
        elif self.technician == "me":
            clauses.append(f"{alias}.technician_id = {arg(who.user_id)}::uuid")
        elif self.technician:
            clauses.append(f"{alias}.technician_id = {arg(uuid.UUID(self.technician))}")
        if self.software:
            clauses.append(f"{alias}.software = {arg(self.software)}")
        if self.kind:
            clauses.append(f"{alias}.kind = {arg(self.kind)}")
        if self.organisation:
            clauses.append(f"{alias}.organisation_id = {arg(self.organisation)}")
        return clauses


def _matches(q_arg: str, staff: bool) -> str:
    """The dossiers a search matches, each with its rank (decision 0023): the reference
    exactly, or every word of the query somewhere in the texts the caller may read (its own
    fields, its organisation's name, its timeline; a customer never reads internal notes),
    found together in the dossier's search document of that audience, on its GIN index."""
    query = f"websearch_to_tsquery('dossier.fr', dossier.fold({q_arg}))"
    document = "staff" if staff else "customer"
    return f"""SELECT id, sum(rank) AS rank FROM (
            SELECT id, 10.0 AS rank FROM dossier.dossiers WHERE reference = upper({q_arg})
            UNION ALL
            SELECT dossier_id, ts_rank({document}, {query}) FROM dossier.search_documents
             WHERE {document} @@ {query}
        ) hits GROUP BY id"""


async def list_dossiers(
    conn: asyncpg.Pool | asyncpg.Connection,
    who: Principal,
    *,
    filters: Filters,
    q: str | None,
    limit: int,
    offset: int,
) -> tuple[list[DossierSummary], int]:
    """R10: open and closed dossiers alike; French full-text search, accents and case aside
    (services/dossier/migrations/030_search.sql), best matches first."""
    if who.role is Role.customer:
        filters = replace(filters, organisation=who.organisation_id)
    args: list[Any] = []
    clauses = filters.where(who, args)
    source = "dossier.dossiers d"
    order = "d.received_at DESC, d.reference DESC"
    if q and q.strip():
        args.append(q.strip())
        source += f" JOIN ({_matches(f'${len(args)}', who.is_staff)}) m ON m.id = d.id"
        order = "m.rank DESC, " + order
    where = " AND ".join(clauses) or "TRUE"
    total = await conn.fetchval(f"SELECT count(*) FROM {source} WHERE {where}", *args)
    rows = await conn.fetch(
        f"SELECT d.* FROM {source} WHERE {where} ORDER BY {order} "
        f"LIMIT {int(limit)} OFFSET {int(offset)}",
        *args,
    )
    return [DossierSummary(**_common(r)) for r in rows], total


async def mark_weekend_deposits(pool: asyncpg.Pool, weekend: Callable[[datetime], bool]) -> int:
    """R4's weekend mark of each open dossier not marked yet (`weekend(received_at)`, the
    business calendar's answer), once per dossier: the queue is then ordered in SQL."""
    rows = await pool.fetch(
        """SELECT id, received_at FROM dossier.dossiers
           WHERE status <> 'closed' AND weekend_deposit IS NULL"""
    )
    if rows:
        await pool.execute(
            """UPDATE dossier.dossiers d SET weekend_deposit = v.weekend
               FROM unnest($1::uuid[], $2::boolean[]) AS v(id, weekend) WHERE d.id = v.id""",
            [r["id"] for r in rows],
            [weekend(r["received_at"]) for r in rows],
        )
    return len(rows)


async def queue_page(
    conn: asyncpg.Pool | asyncpg.Connection,
    who: Principal,
    filters: Filters,
    *,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    """The open dossiers in the queue's order (R4: weekend deposits first, then first come,
    first served, ties by reference), those the filters keep, a page of them with each one's
    `position` in the whole queue, and how many the filters keep."""
    args: list[Any] = []
    where = " AND ".join(["TRUE", *filters.where(who, args, "q")])
    total = await conn.fetchval(
        f"SELECT count(*) FROM dossier.dossiers q WHERE q.status <> 'closed' AND {where}", *args
    )
    rows = await conn.fetch(
        f"""SELECT * FROM (
                SELECT d.*, row_number() OVER (
                    ORDER BY d.weekend_deposit IS NOT TRUE, d.received_at, d.reference
                ) AS position
                FROM dossier.dossiers d WHERE d.status <> 'closed') q
            WHERE {where}
            ORDER BY q.position LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}""",
        *args,
        limit,
        offset,
    )
    return rows, int(total)


async def software_exists(conn: asyncpg.Pool | asyncpg.Connection, code: str) -> bool:
    """Whether the directory knows this software (a filter naming another is refused)."""
    found = await conn.fetchval("SELECT 1 FROM directory.softwares WHERE code = $1", code)
    return found is not None


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
