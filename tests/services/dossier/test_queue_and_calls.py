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
    queue = (await http.get("/api/v1/queue", headers=tech)).json()["items"]
    assert [q["position"] for q in queue] == list(range(1, len(queue) + 1))
    mine = [q for q in queue if q["id"] in ids]
    assert [q["id"] for q in mine] == ids  # same instant class: first come, first served
    for q in mine:
        received = datetime.fromisoformat(q["received_at"])
        weekend = domain.is_weekend_deposit(DEFAULT_CALENDAR, received)
        expected = "traitée en priorité lundi matin" if weekend else "premier arrivé"
        assert expected in q["reason"]
        assert q["business_minutes_left"] is not None and q["business_minutes_left"] <= 240
    # the same order on every read
    again = (await http.get("/api/v1/queue", headers=tech)).json()["items"]
    assert [q["id"] for q in again] == [q["id"] for q in queue]
