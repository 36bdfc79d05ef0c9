"""The walking skeleton over the real stack: deposit → outbox → workflow → event → read model."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from assistance.business_time import DEFAULT_CALENDAR
from assistance.directory import Role
from tests.helpers import auth, deposit_body, eventually


async def test_deposit_becomes_a_readable_dossier(http: httpx.AsyncClient, system) -> None:
    before = datetime.now().astimezone()
    r = await http.post("/api/v1/requests", json=deposit_body())
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "reference", "status", "received_at", "first_response_due"}
    assert body["status"] == "new"
    assert body["reference"].startswith(f"D-{before.year}-")
    received = datetime.fromisoformat(body["received_at"])
    due = datetime.fromisoformat(body["first_response_due"])
    # R3: 4 business hours after receipt, shown in Europe/Paris
    assert due == DEFAULT_CALENDAR.add_business_time(received, timedelta(hours=4))
    assert due.utcoffset() in (timedelta(hours=1), timedelta(hours=2))

    staff = auth(system.tokens[Role.technician])

    async def opened() -> dict | None:
        got = await http.get(f"/api/v1/dossiers/{body['id']}", headers=staff)
        if got.status_code != 200:
            return None
        dossier = got.json()
        return dossier if any(e["kind"] == "opened" for e in dossier["timeline"]) else None

    dossier = await eventually(opened, timeout=30)
    assert dossier["reference"] == body["reference"]
    assert dossier["channel"] == "web"
    assert dossier["status"] == "new"
    assert dossier["first_response_due"] == body["first_response_due"]
    assert dossier["requester"] == {"email": "claire.martin@dupont-sa.fr", "name": "Claire Martin"}

    # the customer of that organisation sees it too (matched by the mail domain)
    mine = await http.get(
        f"/api/v1/dossiers/{body['id']}", headers=auth(system.tokens[Role.customer])
    )
    assert mine.status_code == 200
    assert all(e["visibility"] == "customer" for e in mine.json()["timeline"])


async def test_bad_input_is_a_clear_422(http: httpx.AsyncClient) -> None:
    cases = [
        (deposit_body(subject=""), "subject"),
        (deposit_body(software="inconnu"), "software"),
        (deposit_body(requester={"email": "pas-une-adresse", "name": "X"}), "requester.email"),
        ({k: v for k, v in deposit_body().items() if k != "description"}, "description"),
        (deposit_body(extra="x"), "extra"),
    ]
    for payload, field in cases:
        r = await http.post("/api/v1/requests", json=payload)
        assert r.status_code == 422, (field, r.text)
        error = r.json()["error"]
        assert error["field"] == field
        assert error["message"]
    broken = await http.post(
        "/api/v1/requests", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["error"] == {  # issue 11: in French, with its own code
        "code": "json_invalid",
        "message": "Le corps de la demande n'est pas un JSON valide.",
        "field": None,
    }


async def test_idempotency_key_replays_the_first_answer(http: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "form-submit-42"}
    first = await http.post("/api/v1/requests", json=deposit_body(), headers=headers)
    again = await http.post("/api/v1/requests", json=deposit_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    other = await http.post("/api/v1/requests", json=deposit_body(subject="Autre"), headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["field"] == "Idempotency-Key"


async def test_who_may_read_and_log(http: httpx.AsyncClient, system) -> None:
    r = await http.post(
        "/api/v1/requests",
        json=deposit_body(requester={"email": "someone@ailleurs.example", "name": "Quelqu'un"}),
    )
    dossier_id = r.json()["id"]
    assert (await http.get(f"/api/v1/dossiers/{dossier_id}")).status_code == 401
    bad = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=auth("mna_nope"))
    assert bad.status_code == 401
    # a customer of another organisation does not even learn it exists
    other = await http.get(
        f"/api/v1/dossiers/{dossier_id}", headers=auth(system.tokens[Role.customer])
    )
    assert other.status_code == 404
    call = deposit_body(caller_phone="+33 1 23 45 67 89")
    forbidden = await http.post(
        "/api/v1/calls", json=call, headers=auth(system.tokens[Role.customer])
    )
    assert forbidden.status_code == 403
    logged = await http.post(
        "/api/v1/calls", json=call, headers=auth(system.tokens[Role.technician])
    )
    assert logged.status_code == 201
