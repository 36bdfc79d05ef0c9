"""The product manager's decision (R9): accepted with a specification handed to the IT project
managers, or rejected with a reason; every requester's dossier hears of it through the event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from assistance import directory, french
from assistance.directory import Principal, Role
from assistance.errors import Forbidden
from assistance.settings import Settings
from services.evolutions import backlog, domain, mail, repo
from services.evolutions.models import DecisionIn, DecisionOut


async def decide(
    conn: asyncpg.Connection,
    some_id: uuid.UUID,
    who: Principal,
    body: DecisionIn,
    settings: Settings,
) -> DecisionOut:
    """Record the decision once; the same decision again answers the same (idempotent),
    another one after it is a conflict. Call inside a transaction."""
    evolution_id = await backlog.find_id(conn, some_id)
    row = await backlog.lock_evolution(conn, evolution_id)
    # R9: only a product manager of this software decides for it.
    if who.role is not Role.product_manager or not await repo.is_product_manager(
        conn, row["software"], who.user_id
    ):
        raise Forbidden(
            "not_product_manager",
            f"Seul un chef de produit de {row['software']} peut décider de cette évolution.",
        )
    domain.check_decision(body.decision, body.reason, body.specification)
    requests = (await repo.requests_of(conn, [evolution_id]))[evolution_id]
    if row["status"] in ("accepted", "rejected"):
        domain.replayed_decision(row, body.decision, body.reason, body.specification)
        return _answer(row, requests)
    now = datetime.now(UTC)
    handed_to: list[str] = []
    if body.decision == "accepted":
        handed_to = await _project_managers(conn, settings)
    row = await repo.record_decision(
        conn,
        evolution_id,
        decision=body.decision,
        at=now,
        by=who.user_id,
        by_name=who.name or who.email,
        reason=body.reason or None,
        specification=body.specification or None,
        handed_to=handed_to,
        title=body.title,
        summary=body.summary,
    )
    for recipient in handed_to:
        await mail.enqueue(
            conn, await _specification_mail(conn, row, requests, recipient, settings)
        )
    await backlog.publish(
        conn,
        f"{evolution_id}:decided",
        f"request.{body.decision}",
        {
            "evolution_id": evolution_id,
            "software": row["software"],
            "decision": body.decision,
            "title": row["title"],
            "reason": row["reason"],
            "specification": row["specification"],
            "request_id": requests[0]["id"] if requests else None,
            "request_ids": [r["id"] for r in requests],
            "dossier_ids": _dossiers(requests),
            "decided_at": now,
        },
    )
    return _answer(row, requests)


def _dossiers(requests: list[dict[str, Any]]) -> list[uuid.UUID]:
    return list(dict.fromkeys(r["dossier_id"] for r in requests))


def _answer(row: dict[str, Any], requests: list[dict[str, Any]]) -> DecisionOut:
    return DecisionOut(
        evolution_id=row["id"],
        software=row["software"],
        decision=row["status"],
        reason=row["reason"],
        specification=row["specification"],
        decided_at=row["decided_at"],
        decided_by=row["decided_by_name"],
        dossier_ids=_dossiers(requests),
        handed_to=list(row["handed_to"]),
    )


async def _project_managers(conn: asyncpg.Connection, settings: Settings) -> list[str]:
    """R9: the specification goes to the IT project managers; never to nobody."""
    found = await directory.emails_with_role(conn, Role.project_manager)
    if not found:
        found = await directory.emails_with_role(conn, Role.admin)
    return found or [settings.support_address]


async def _specification_mail(
    conn: asyncpg.Connection,
    row: dict[str, Any],
    requests: list[dict[str, Any]],
    recipient: str,
    settings: Settings,
) -> dict[str, Any]:
    software_name = await backlog.software_label(conn, row["software"])
    return mail.compose(
        "specification",
        str(row["id"]),
        recipient,
        f"Cahier des charges à développer — {software_name} : {row['title']}",
        "specification",
        {
            "software_name": software_name,
            "title": row["title"],
            "clients": backlog.clients(requests),
            "decided_by": row["decided_by_name"],
            "decided_at": french.moment(row["decided_at"]),
            "reason": row["reason"],
            "specification": row["specification"],
            "evolution_id": row["id"],
        },
        settings,
    )
