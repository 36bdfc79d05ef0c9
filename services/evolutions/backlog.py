"""The backlog per software (R9): requests handed over by dossiers, grouped into evolutions.

One transaction per use case; events go to the outbox in the same transaction.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from assistance import directory, outbox
from assistance.errors import NotFound
from assistance.events import Event
from services.evolutions import domain
from services.evolutions.models import EvolutionOut, HandOverIn, RequestOut
from services.evolutions.rendering import to_html

SOURCE = "evolutions"

_EVOLUTION_COLUMNS = """id, software, title, summary, status, merged_into, created_at,
    first_reviewed_at, decided_at, decided_by, decided_by_name, reason, specification,
    handed_to, shipped_version, shipped_at"""


async def publish(conn: asyncpg.Connection, event_id: str, kind: str, data: dict[str, Any]) -> None:
    """A fact, in the outbox of the transaction that establishes it (stable id)."""
    await outbox.enqueue_event(
        conn, SOURCE, Event(id=event_id, type=f"evolutions.{kind}", data=_json(data))
    )


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# --- the hand-over ------------------------------------------------------------------------------


async def record_request(conn: asyncpg.Connection, order: HandOverIn) -> dict[str, str]:
    """R9: the technician's evolution request enters the software's backlog.

    Idempotent on (dossier, attempt): the same hand-over answers the same ids. A later attempt
    for a dossier whose request is still undecided answers that request too.
    """
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"evolutions:{order.dossier_id}"
    )
    found = await conn.fetchrow(
        """SELECT r.id, r.evolution_id FROM evolutions.requests r
           JOIN evolutions.evolutions e ON e.id = r.evolution_id
           WHERE r.dossier_id = $1 AND (r.attempt = $2 OR e.status IN ('open', 'merged'))
           ORDER BY r.attempt = $2 DESC, r.recorded_at DESC LIMIT 1""",
        order.dossier_id,
        order.attempt,
    )
    if found is not None:
        evolution_id = await _resolve(conn, found["evolution_id"])
        return {"request_id": str(found["id"]), "evolution_id": str(evolution_id)}
    now = datetime.now(UTC)
    request_id, evolution_id = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        """INSERT INTO evolutions.evolutions (id, software, title, summary, created_at)
           VALUES ($1, $2, $3, $4, $5)""",
        evolution_id,
        order.software,
        (order.subject.strip() or order.reference)[:200],
        "",  # the public summary is the product manager's to write (R12 announcements)
        now,
    )
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
        await directory.organisation_name(conn, order.organisation_id),
        order.requester_email,
        order.requester_name,
        order.subject,
        order.description,
        order.context,
        order.need,
        order.version,
        now,
    )
    await publish(
        conn,
        f"{request_id}:recorded",
        "request.recorded",
        {
            "request_id": request_id,
            "evolution_id": evolution_id,
            "dossier_id": order.dossier_id,
            "reference": order.reference,
            "software": order.software,
        },
    )
    return {"request_id": str(request_id), "evolution_id": str(evolution_id)}


# --- reading ------------------------------------------------------------------------------------


async def _resolve(conn: asyncpg.Connection, evolution_id: uuid.UUID) -> uuid.UUID:
    """Follow grouping to the evolution that now carries the request."""
    for _ in range(100):
        target = await conn.fetchval(
            "SELECT merged_into FROM evolutions.evolutions WHERE id = $1", evolution_id
        )
        if target is None:
            return evolution_id
        evolution_id = target
    return evolution_id


async def find_id(conn: asyncpg.Connection, some_id: uuid.UUID) -> uuid.UUID:
    """The evolution an id names: an evolution's own id, or one of its requests' (404 else)."""
    exists = await conn.fetchval("SELECT 1 FROM evolutions.evolutions WHERE id = $1", some_id)
    if not exists:
        some_id = await conn.fetchval(
            "SELECT evolution_id FROM evolutions.requests WHERE id = $1", some_id
        )
        if some_id is None:
            raise NotFound("evolution_not_found", "Demande d'évolution introuvable.")
    return await _resolve(conn, some_id)


async def lock_evolution(conn: asyncpg.Connection, evolution_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"SELECT {_EVOLUTION_COLUMNS} FROM evolutions.evolutions WHERE id = $1 FOR UPDATE",
        evolution_id,
    )
    if row is None:
        raise NotFound("evolution_not_found", "Demande d'évolution introuvable.")
    return dict(row)


async def requests_of(
    conn: asyncpg.Connection, evolution_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    rows = await conn.fetch(
        """SELECT * FROM evolutions.requests WHERE evolution_id = ANY($1::uuid[])
           ORDER BY recorded_at, id""",
        evolution_ids,
    )
    found: dict[uuid.UUID, list[dict[str, Any]]] = {i: [] for i in evolution_ids}
    for row in rows:
        found[row["evolution_id"]].append(dict(row))
    return found


def _out(row: dict[str, Any], requests: list[dict[str, Any]]) -> EvolutionOut:
    spec = row["specification"]
    return EvolutionOut(
        id=row["id"],
        software=row["software"],
        title=row["title"],
        summary=row["summary"],
        status=row["status"],
        merged_into=row["merged_into"],
        created_at=row["created_at"],
        first_reviewed_at=row["first_reviewed_at"],
        decided_at=row["decided_at"],
        decided_by=row["decided_by_name"],
        reason=row["reason"],
        specification=spec,
        specification_html=to_html(spec) if spec else None,
        shipped_version=row["shipped_version"],
        shipped_at=row["shipped_at"],
        requests=[RequestOut.model_validate(r) for r in requests],
    )


async def get_evolution(conn: asyncpg.Connection, evolution_id: uuid.UUID) -> EvolutionOut:
    row = await conn.fetchrow(
        f"SELECT {_EVOLUTION_COLUMNS} FROM evolutions.evolutions WHERE id = $1", evolution_id
    )
    if row is None:
        raise NotFound("evolution_not_found", "Demande d'évolution introuvable.")
    requests = await requests_of(conn, [evolution_id])
    return _out(dict(row), requests[evolution_id])


async def list_evolutions(
    conn: asyncpg.Connection,
    software: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[EvolutionOut], int]:
    where = "($1::text IS NULL OR software = $1) AND ($2::text IS NULL OR status = $2)"
    total = await conn.fetchval(
        f"SELECT count(*) FROM evolutions.evolutions WHERE {where}", software, status
    )
    rows = await conn.fetch(
        f"""SELECT {_EVOLUTION_COLUMNS} FROM evolutions.evolutions WHERE {where}
            ORDER BY created_at DESC, id LIMIT $3 OFFSET $4""",
        software,
        status,
        limit,
        offset,
    )
    requests = await requests_of(conn, [r["id"] for r in rows])
    return [_out(dict(r), requests[r["id"]]) for r in rows], total


# --- grouping -----------------------------------------------------------------------------------


async def group(
    conn: asyncpg.Connection,
    target_id: uuid.UUID,
    others: list[uuid.UUID],
    title: str | None,
    summary: str | None,
) -> EvolutionOut:
    """R9: similar requests become one item, with every requesting client."""
    ids = sorted({i for i in others if i != target_id})
    # Lock in a stable order so two groupings never wait on each other.
    locked = {i: await lock_evolution(conn, i) for i in sorted([target_id, *ids])}
    target = locked[target_id]
    domain.can_group(target, [locked[i] for i in ids])
    moving = [i for i in ids if locked[i]["status"] == "open"]
    if moving:
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
    if title or summary is not None:
        await conn.execute(
            """UPDATE evolutions.evolutions SET title = coalesce($2, title),
                   summary = coalesce($3, summary) WHERE id = $1""",
            target_id,
            title,
            summary,
        )
    if moving:
        requests = (await requests_of(conn, [target_id]))[target_id]
        digest = hashlib.sha256(",".join(str(i) for i in moving).encode()).hexdigest()[:16]
        await publish(
            conn,
            f"{target_id}:grouped:{digest}",
            "request.grouped",
            {
                "evolution_id": target_id,
                "software": target["software"],
                "merged": moving,
                "request_id": requests[0]["id"],
                "request_ids": [r["id"] for r in requests],
                "dossier_ids": list(dict.fromkeys(r["dossier_id"] for r in requests)),
            },
        )
    return await get_evolution(conn, target_id)


# --- product managers of a software (R9: who decides) -------------------------------------------


async def assign_product_manager(
    conn: asyncpg.Connection | asyncpg.Pool, software: str, user_id: uuid.UUID
) -> None:
    await conn.execute(
        """INSERT INTO evolutions.product_managers (software, user_id) VALUES ($1, $2)
           ON CONFLICT DO NOTHING""",
        software,
        user_id,
    )


async def unassign_product_manager(
    conn: asyncpg.Connection | asyncpg.Pool, software: str, user_id: uuid.UUID
) -> bool:
    result = await conn.execute(
        "DELETE FROM evolutions.product_managers WHERE software = $1 AND user_id = $2",
        software,
        user_id,
    )
    return bool(result.endswith(" 1"))


async def product_managers(
    conn: asyncpg.Connection | asyncpg.Pool, software: str
) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT user_id FROM evolutions.product_managers WHERE software = $1 ORDER BY assigned_at",
        software,
    )
    return [r["user_id"] for r in rows]


async def is_product_manager(
    conn: asyncpg.Connection | asyncpg.Pool, software: str, user_id: uuid.UUID | None
) -> bool:
    if user_id is None:
        return False
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM evolutions.product_managers WHERE software = $1 AND user_id = $2",
            software,
            user_id,
        )
    )


def clients(requests: list[dict[str, Any]]) -> list[str]:
    """Who asked, once each: the organisation when known, else the person."""
    names = [
        r["organisation_name"] or f"{r['requester_name']} <{r['requester_email']}>"
        for r in requests
    ]
    return list(dict.fromkeys(names))


async def software_label(conn: asyncpg.Connection, software: str) -> str:
    for entry in await directory.list_softwares(conn):
        if entry["code"] == software:
            return str(entry["name"])
    return software
