"""R9 over the real stack: the hand-over records the request, grouping, the weekly agenda."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from nats.aio.client import Client as NATS

from assistance import temporal
from assistance.directory import Role
from assistance.settings import Settings
from deploy.local.stack import LocalStack
from services.evolutions import domain, reviews
from services.evolutions.review_types import ReviewOrder, WeeklyReviewInput
from tests.helpers import auth
from tests.services.evolutions.support import (
    PM_EMAIL,
    TECH_EMAIL,
    events,
    hand_over,
    hand_over_order,
    settled,
)
from workflows.weekly_review import WeeklyReviewWorkflow


async def test_hand_over_is_recorded_once_per_dossier_and_attempt(
    nc: NATS, pool: asyncpg.Pool, software: str, dupont: uuid.UUID
) -> None:
    order = hand_over_order(software, organisation_id=str(dupont))
    first = await hand_over(nc, order)
    assert first["ok"] is True
    again = await hand_over(nc, order)
    assert again == first  # idempotent on (dossier_id, attempt)
    # a later attempt while the request is undecided answers the same request
    assert await hand_over(nc, {**order, "attempt": 2}) == first
    rows = await pool.fetch(
        "SELECT * FROM evolutions.requests WHERE dossier_id = $1", uuid.UUID(order["dossier_id"])
    )
    assert len(rows) == 1
    assert rows[0]["organisation_name"] == "Dupont SA"
    assert rows[0]["need"] == "Un fichier FEC par site"
    recorded = await events(pool, "request.recorded", dossier_id=order["dossier_id"])
    assert [e["id"] for e in recorded] == [f"{first['request_id']}:recorded"]
    assert recorded[0]["data"]["request_id"] == first["request_id"]


async def test_an_invalid_hand_over_is_refused_with_a_reason(nc: NATS, software: str) -> None:
    answer = await hand_over(nc, hand_over_order(software, dossier_id="pas-un-uuid"))
    assert answer["ok"] is False
    assert "dossier_id" in answer["error"]


async def test_grouping_shows_one_item_with_every_client(
    http: httpx.AsyncClient, system, nc: NATS, pool: asyncpg.Pool, software: str, dupont
) -> None:
    a = await hand_over(nc, hand_over_order(software, organisation_id=str(dupont)))
    b = await hand_over(
        nc,
        hand_over_order(
            software,
            requester_email="jean@martin-freres.fr",
            requester_name="Jean Martin",
            subject="FEC séparé pour chaque agence",
        ),
    )
    tech = auth(system.tokens[Role.technician])
    url = f"/api/v1/evolutions/{a['evolution_id']}/group"
    body = {"evolutions": [b["request_id"]], "title": "Export FEC par établissement"}
    grouped = await http.post(url, headers=tech, json=body)
    assert grouped.status_code == 200, grouped.text
    item = grouped.json()
    assert item["title"] == "Export FEC par établissement"
    assert [r["requester_name"] for r in item["requests"]] == ["Claire Martin", "Jean Martin"]
    assert (await http.post(url, headers=tech, json=body)).json() == item  # idempotent
    merged = await http.get(f"/api/v1/evolutions/{b['evolution_id']}", headers=tech)
    assert merged.json()["id"] == a["evolution_id"]  # follows the grouping
    event = (await events(pool, "request.grouped", evolution_id=a["evolution_id"]))[0]
    assert sorted(event["data"]["dossier_ids"]) == sorted(
        [r["dossier_id"] for r in item["requests"]]
    )
    customer = auth(system.tokens[Role.customer])
    assert (await http.post(url, headers=customer, json=body)).status_code == 403
    unknown = await http.post(url, headers=tech, json={"evolutions": [str(uuid.uuid4())]})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "evolutions"


async def test_weekly_agenda_lists_new_and_undecided_requests_with_their_clients(
    http: httpx.AsyncClient,
    system,
    settings: Settings,
    stack: LocalStack,
    nc: NATS,
    pool: asyncpg.Pool,
    software: str,
    dupont,
) -> None:
    a = await hand_over(nc, hand_over_order(software, organisation_id=str(dupont)))
    b = await hand_over(
        nc,
        hand_over_order(
            software, requester_email="jean@martin-freres.fr", requester_name="Jean Martin"
        ),
    )
    c = await hand_over(nc, hand_over_order(software, subject="Lettrage automatique"))
    tech = auth(system.tokens[Role.technician])
    pm = auth(system.tokens[Role.product_manager])
    await http.post(
        f"/api/v1/evolutions/{a['evolution_id']}/group",
        headers=tech,
        json={"evolutions": [b["evolution_id"]]},
    )

    # R9: the schedule's workflow, on the system's own worker
    client = await temporal.connect(settings.temporal_address, lazy=False)
    summary = await client.execute_workflow(
        WeeklyReviewWorkflow.run,
        WeeklyReviewInput(software=software),
        id=f"weekly-review-{software}-test",
        task_queue=settings.temporal_task_queue,
    )
    assert (summary.items, summary.new, summary.carried_over) == (2, 2, 0)
    assert summary.notified == sorted([PM_EMAIL, TECH_EMAIL])
    assert summary.week == domain.iso_week(datetime.now(UTC))

    review = (await http.get(f"/api/v1/reviews/{summary.review_id}", headers=pm)).json()
    first, second = review["agenda"]["items"]
    assert first["evolution_id"] == a["evolution_id"]
    assert first["clients"] == ["Dupont SA", "Jean Martin <jean@martin-freres.fr>"]
    assert [r["request_id"] for r in first["requests"]] == [a["request_id"], b["request_id"]]
    assert first["requests"][0]["context"] == "Cabinet comptable, 3 sites"
    assert second["evolution_id"] == c["evolution_id"]
    assert second["title"] == "Lettrage automatique"
    assert not first["carried_over"] and not second["carried_over"]
    listed = await http.get("/api/v1/reviews", params={"software": software}, headers=tech)
    assert [r["id"] for r in listed.json()] == [summary.review_id]
    assert (await http.get(f"/api/v1/reviews/{summary.review_id}")).status_code == 401

    # the product manager and the technicians get the agenda, once each
    for who in (PM_EMAIL, TECH_EMAIL):
        (mail,) = await settled(stack, who, f"{software[-8:].upper()} — {summary.week}", 1)
        text = mail.get_body(("plain",)).get_content()
        assert "Dupont SA" in text and "Lettrage automatique" in text
        assert f"/api/v1/evolutions/{a['evolution_id']}/decision" in text
    reviewed = await events(pool, "request.reviewed", evolution_id=a["evolution_id"])
    assert len(reviewed) == 1
    assert sorted(reviewed[0]["data"]["dossier_ids"]) == sorted(
        [r["dossier_id"] for r in first["requests"]]
    )

    # the same week again: the stored review, nothing built or mailed twice
    again = await client.execute_workflow(
        WeeklyReviewWorkflow.run,
        WeeklyReviewInput(software=software),
        id=f"weekly-review-{software}-again",
        task_queue=settings.temporal_task_queue,
    )
    assert again == summary

    # a decision, a new request, then next week's agenda: the undecided one is carried over
    decided = await http.post(
        f"/api/v1/evolutions/{c['evolution_id']}/decision",
        headers=pm,
        json={"decision": "rejected", "reason": "Déjà prévu autrement."},
    )
    assert decided.status_code == 200, decided.text
    d = await hand_over(nc, hand_over_order(software, subject="Relances clients"))
    async with pool.acquire() as conn, conn.transaction():
        nxt = await reviews.build_review(
            conn,
            ReviewOrder(software=software, held_at=datetime.now(UTC) + timedelta(days=7)),
            settings,
            "Europe/Paris",
        )
    assert (nxt.items, nxt.new, nxt.carried_over) == (2, 1, 1)
    agenda = (await http.get(f"/api/v1/reviews/{nxt.review_id}", headers=pm)).json()["agenda"]
    assert [(i["evolution_id"], i["carried_over"]) for i in agenda["items"]] == [
        (a["evolution_id"], True),
        (d["evolution_id"], False),
    ]


async def test_an_empty_agenda_is_stored_without_mail(
    settings: Settings, pool: asyncpg.Pool, software: str
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        summary = await reviews.build_review(
            conn, ReviewOrder(software, datetime.now(UTC)), settings, "Europe/Paris"
        )
    assert (summary.items, summary.notified) == (0, [])
