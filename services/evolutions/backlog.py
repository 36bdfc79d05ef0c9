"""The backlog per software (R9): requests handed over by dossiers, grouped into evolutions.

One transaction per use case; events go to the outbox in the same transaction; the SQL is in
`repo.py`.
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
from services.evolutions import domain, repo
from services.evolutions.models import EvolutionOut, HandOverIn, RequestOut
from services.evolutions.rendering import to_html

SOURCE = "evolutions"


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
    await repo.lock_dossier(conn, order.dossier_id)
    found = await repo.request_of_dossier(conn, order.dossier_id, order.attempt)
    if found is not None:
        evolution_id = await _resolve(conn, found["evolution_id"])
        return {"request_id": str(found["id"]), "evolution_id": str(evolution_id)}
    now = datetime.now(UTC)
    request_id, evolution_id = uuid.uuid4(), uuid.uuid4()
    await repo.insert_evolution(
        conn,
        evolution_id,
        order.software,
        (order.subject.strip() or order.reference)[:200],
        "",  # the public summary is the product manager's to write (R12 announcements)
        now,
    )
    await repo.insert_request(
        conn,
        request_id,
        evolution_id,
        order,
        await directory.organisation_name(conn, order.organisation_id),
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
        target = await repo.merged_into(conn, evolution_id)
        if target is None:
            return evolution_id
        evolution_id = target
    return evolution_id


async def find_id(conn: asyncpg.Connection, some_id: uuid.UUID) -> uuid.UUID:
    """The evolution an id names: an evolution's own id, or one of its requests' (404 else)."""
    if not await repo.evolution_exists(conn, some_id):
        found = await repo.evolution_of_request(conn, some_id)
        if found is None:
            raise NotFound("evolution_not_found", "Demande d'évolution introuvable.")
        some_id = found
    return await _resolve(conn, some_id)


async def lock_evolution(conn: asyncpg.Connection, evolution_id: uuid.UUID) -> dict[str, Any]:
    row = await repo.evolution(conn, evolution_id, for_update=True)
    if row is None:
        raise NotFound("evolution_not_found", "Demande d'évolution introuvable.")
    return dict(row)


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
    row = await repo.evolution(conn, evolution_id)
    if row is None:
        raise NotFound("evolution_not_found", "Demande d'évolution introuvable.")
    requests = await repo.requests_of(conn, [evolution_id])
    return _out(dict(row), requests[evolution_id])


async def list_evolutions(
    conn: asyncpg.Connection,
    software: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[EvolutionOut], int]:
    total, rows = await repo.evolutions(conn, software, status, limit, offset)
    requests = await repo.requests_of(conn, [r["id"] for r in rows])
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
        await repo.merge(conn, target_id, moving)
    if title or summary is not None:
        await repo.retitle(conn, target_id, title, summary)
    if moving:
        requests = (await repo.requests_of(conn, [target_id]))[target_id]
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
