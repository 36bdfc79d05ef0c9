"""The weekly review (R9): the agenda of a software, built once per ISO week.

The agenda lists every undecided evolution of the software: the new ones (recorded since the
last review) and those carried over (on an earlier agenda, still undecided). Each item shows
every requesting client, since similar requests are grouped into one evolution.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from assistance import directory, french
from assistance.clock import PARIS
from assistance.directory import Role
from assistance.errors import NotFound
from assistance.settings import Settings
from services.evolutions import backlog, domain, mail, repo
from services.evolutions.models import ReviewOut
from services.evolutions.review_types import ReviewOrder, ReviewSummary


async def build_review(
    conn: asyncpg.Connection, order: ReviewOrder, settings: Settings, zone: str
) -> ReviewSummary:
    """Build, store and announce the review of `order.software` for its week; call inside a
    transaction. Idempotent: a second call in the same week answers the stored review."""
    week = domain.iso_week(order.held_at, zone)
    await repo.lock_review(conn, order.software, week)
    stored = await repo.review_of_week(conn, order.software, week)
    if stored is not None:
        return _summary(dict(stored))
    rows = await repo.undecided_for_review(conn, order.software, order.held_at)
    requests = await repo.requests_of(conn, [r["id"] for r in rows])
    review_id = uuid.uuid4()
    software_name = await backlog.software_label(conn, order.software)
    items = [_item(dict(r), requests[r["id"]]) for r in rows]
    new = sum(1 for i in items if not i["carried_over"])
    agenda = {
        "software": order.software,
        "software_name": software_name,
        "week": week,
        "held_at": order.held_at.astimezone(PARIS).isoformat(),
        "new": new,
        "carried_over": len(items) - new,
        "items": items,
    }
    recipients = await _participants(conn, order.software) if items else []
    await repo.insert_review(
        conn, review_id, order.software, week, order.held_at, agenda, recipients
    )
    await repo.mark_reviewed(conn, [r["id"] for r in rows], order.held_at)
    for item in items:
        await backlog.publish(
            conn,
            f"{review_id}:{item['evolution_id']}:reviewed",
            "request.reviewed",
            {
                "review_id": review_id,
                "week": week,
                "software": order.software,
                "evolution_id": item["evolution_id"],
                "carried_over": item["carried_over"],
                "request_id": item["requests"][0]["request_id"] if item["requests"] else None,
                "request_ids": [r["request_id"] for r in item["requests"]],
                "dossier_ids": list(dict.fromkeys(r["dossier_id"] for r in item["requests"])),
            },
        )
    context = {
        "software_name": software_name,
        "week": week,
        "held_at": french.moment(order.held_at),
        "items": items,
        "review_id": review_id,
    }
    for recipient in recipients:
        await mail.enqueue(
            conn,
            mail.compose(
                "review",
                str(review_id),
                recipient,
                f"Revue des évolutions {software_name} — {week} : {len(items)} demande(s)",
                "review_agenda",
                context,
                settings,
            ),
        )
    return ReviewSummary(
        review_id=str(review_id),
        software=order.software,
        week=week,
        items=len(items),
        new=new,
        carried_over=len(items) - new,
        notified=recipients,
    )


def _item(row: dict[str, Any], requests: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "evolution_id": str(row["id"]),
        "title": row["title"],
        "summary": row["summary"],
        "recorded_at": row["created_at"].astimezone(PARIS).isoformat(),
        "carried_over": row["first_reviewed_at"] is not None,
        "clients": backlog.clients(requests),
        "requests": [
            {
                "request_id": str(r["id"]),
                "dossier_id": str(r["dossier_id"]),
                "reference": r["reference"],
                "organisation_id": str(r["organisation_id"]) if r["organisation_id"] else None,
                "organisation_name": r["organisation_name"],
                "requester_name": r["requester_name"],
                "requester_email": r["requester_email"],
                "subject": r["subject"],
                "context": r["context"],
                "need": r["need"],
                "version": r["version"],
                "recorded_at": r["recorded_at"].astimezone(PARIS).isoformat(),
            }
            for r in requests
        ],
    }


async def _participants(conn: asyncpg.Connection, software: str) -> list[str]:
    """R9: the software's product managers and the technicians meet for the review."""
    found = await directory.emails_with_role(conn, Role.technician)
    for user_id in await repo.product_managers(conn, software):
        email = await directory.user_email(conn, user_id)
        if email:
            found.append(email)
    return sorted(set(found))


def _summary(row: dict[str, Any]) -> ReviewSummary:
    agenda = row["agenda"]
    return ReviewSummary(
        review_id=str(row["id"]),
        software=row["software"],
        week=row["week"],
        items=len(agenda["items"]),
        new=agenda["new"],
        carried_over=agenda["carried_over"],
        notified=list(row["notified"]),
    )


def _out(row: asyncpg.Record) -> ReviewOut:
    return ReviewOut(
        id=row["id"],
        software=row["software"],
        week=row["week"],
        held_at=row["held_at"],
        agenda=row["agenda"],
        notified=list(row["notified"]),
    )


async def get_review(conn: asyncpg.Connection | asyncpg.Pool, review_id: uuid.UUID) -> ReviewOut:
    row = await repo.review(conn, review_id)
    if row is None:
        raise NotFound("review_not_found", "Revue introuvable.")
    return _out(row)


async def list_reviews(
    conn: asyncpg.Connection | asyncpg.Pool, software: str | None, limit: int
) -> list[ReviewOut]:
    return [_out(r) for r in await repo.reviews(conn, software, limit)]
