"""R1 phone calls and R4 queue over the real stack."""

from __future__ import annotations

from datetime import datetime

import httpx

from assistance.business_time import DEFAULT_CALENDAR
from assistance.directory import Role
from services.dossier import domain
from tests.helpers import auth, deposit_body, eventually


async def _projected(http: httpx.AsyncClient, headers: dict, dossier_id: str, kind: str) -> dict:
    async def ready() -> dict | None:
        got = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=headers)
        if got.status_code != 200:
            return None
        body = got.json()
        return body if any(e["kind"] == kind for e in body["timeline"]) else None

    return await eventually(ready, timeout=30)


async def test_phone_call_is_answered_live(http: httpx.AsyncClient, system) -> None:
    tech = auth(system.tokens[Role.technician])
    r = await http.post(
        "/api/v1/calls",
        headers=tech,
        json=deposit_body(caller_phone="+33 4 72 00 00 00", subject="Appel"),
    )
    assert r.status_code == 201, r.text
    dossier = await _projected(http, tech, r.json()["id"], "opened")
    assert dossier["channel"] == "phone"
    assert dossier["status"] == "in_progress"
    assert dossier["technician"]["name"] == "Thomas Technicien"
    assert dossier["first_responded_at"] == dossier["received_at"]  # R3: answered live


async def test_queue_lists_open_dossiers_in_treatment_order(
    http: httpx.AsyncClient, system
) -> None:
    tech = auth(system.tokens[Role.technician])
    ids = []
    for i in range(3):
        r = await http.post("/api/v1/requests", json=deposit_body(subject=f"File {i}"))
        ids.append(r.json()["id"])
    for dossier_id in ids:
        await _projected(http, tech, dossier_id, "opened")
    assert (
        await http.get("/api/v1/queue", headers=auth(system.tokens[Role.customer]))
    ).status_code == 403
    queue = await _whole_queue(http, tech)
    assert [q["position"] for q in queue] == list(range(1, len(queue) + 1))
    # the order computed in SQL is the rule's (services/dossier/domain.py)
    entries = [
        domain.QueueEntry(
            q["id"],
            q["reference"],
            datetime.fromisoformat(q["received_at"]),
            domain.is_weekend_deposit(DEFAULT_CALENDAR, datetime.fromisoformat(q["received_at"])),
        )
        for q in queue
    ]
    assert [e.dossier_id for e in domain.queue_order(entries)] == [q["id"] for q in queue]
    mine = [q for q in queue if q["id"] in ids]
    assert [q["id"] for q in mine] == ids  # same instant class: first come, first served
    for q in mine:
        received = datetime.fromisoformat(q["received_at"])
        weekend = domain.is_weekend_deposit(DEFAULT_CALENDAR, received)
        expected = "traitée en priorité lundi matin" if weekend else "premier arrivé"
        assert expected in q["reason"]
        assert q["business_minutes_left"] is not None and q["business_minutes_left"] <= 240
    # the same order on every read, and a page is the whole queue's slice
    again = await _whole_queue(http, tech)
    assert [q["id"] for q in again] == [q["id"] for q in queue]
    page = await http.get("/api/v1/queue", headers=tech, params={"limit": 2, "offset": 1})
    assert page.status_code == 200
    assert page.json()["total"] == len(queue)
    assert [q["id"] for q in page.json()["items"]] == [q["id"] for q in queue[1:3]]
    assert [q["position"] for q in page.json()["items"]] == [2, 3][: len(queue) - 1]
    refused = await http.get("/api/v1/queue", headers=tech, params={"limit": 501})
    assert refused.status_code == 422


async def _whole_queue(http: httpx.AsyncClient, headers: dict) -> list[dict]:
    """Every page of the queue, in order."""
    items: list[dict] = []
    while True:
        got = await http.get(
            "/api/v1/queue", headers=headers, params={"limit": 500, "offset": len(items)}
        )
        assert got.status_code == 200, got.text
        body = got.json()
        items += body["items"]
        if not body["items"] or len(items) >= body["total"]:
            return items
