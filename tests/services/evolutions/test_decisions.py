"""R9 decisions by API: only that software's product manager; a specification when accepted,
a reason when rejected; idempotent; the specification handed to the IT project managers."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
from nats.aio.client import Client as NATS

from assistance.directory import Role
from deploy.local.stack import LocalStack
from tests.helpers import auth
from tests.services.evolutions.support import (
    PROJECT_EMAIL,
    events,
    hand_over,
    hand_over_order,
    settled,
)

SPEC = "# Export FEC par établissement\n\n- un fichier par SIRET\n- même format qu'aujourd'hui"


async def test_only_a_product_manager_of_that_software_decides(
    http: httpx.AsyncClient, system, nc: NATS, software: str, other_pm_token: str
) -> None:
    ids = await hand_over(nc, hand_over_order(software))
    url = f"/api/v1/evolutions/{ids['evolution_id']}/decision"
    body = {"decision": "accepted", "specification": SPEC}
    assert (await http.post(url, json=body)).status_code == 401
    for role in (Role.technician, Role.project_manager, Role.admin, Role.customer):
        refused = await http.post(url, headers=auth(system.tokens[role]), json=body)
        assert refused.status_code == 403, role
    other = await http.post(url, headers=auth(other_pm_token), json=body)
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "not_product_manager"
    assert software in other.json()["error"]["message"]
    # nothing was decided by those attempts
    got = await http.get(
        f"/api/v1/evolutions/{ids['evolution_id']}", headers=auth(system.tokens[Role.technician])
    )
    assert got.json()["status"] == "open"


async def test_missing_specification_or_reason_is_a_422_naming_the_field(
    http: httpx.AsyncClient, system, nc: NATS, software: str
) -> None:
    ids = await hand_over(nc, hand_over_order(software))
    url = f"/api/v1/evolutions/{ids['evolution_id']}/decision"
    pm = auth(system.tokens[Role.product_manager])
    cases = [
        ({"decision": "accepted"}, "specification"),
        ({"decision": "accepted", "specification": "   "}, "specification"),
        ({"decision": "rejected"}, "reason"),
        ({"decision": "rejected", "reason": ""}, "reason"),
        ({"decision": "peut-être", "reason": "x"}, "decision"),
        ({"decision": "accepted", "specification": SPEC, "extra": 1}, "extra"),
    ]
    for body, field in cases:
        r = await http.post(url, headers=pm, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["field"] == field
        assert r.json()["error"]["message"]
    missing = await http.post(
        f"/api/v1/evolutions/{uuid.uuid4()}/decision", headers=pm, json=cases[0][0]
    )
    assert missing.status_code == 404
    bad_id = await http.post("/api/v1/evolutions/pas-un-id/decision", headers=pm, json={})
    assert bad_id.status_code == 422


async def test_acceptance_is_idempotent_and_hands_the_specification_over(
    http: httpx.AsyncClient,
    system,
    stack: LocalStack,
    nc: NATS,
    pool: asyncpg.Pool,
    software: str,
) -> None:
    a = await hand_over(nc, hand_over_order(software))
    b = await hand_over(nc, hand_over_order(software, requester_email="jean@martin-freres.fr"))
    tech, pm = auth(system.tokens[Role.technician]), auth(system.tokens[Role.product_manager])
    await http.post(
        f"/api/v1/evolutions/{a['evolution_id']}/group",
        headers=tech,
        json={"evolutions": [b["evolution_id"]]},
    )
    # decided through a request's id: the same evolution
    url = f"/api/v1/evolutions/{b['request_id']}/decision"
    body = {
        "decision": "accepted",
        "reason": "Demandé par deux clients.",
        "specification": SPEC,
        "title": "Export FEC par établissement",
    }
    first = await http.post(url, headers=pm, json=body)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["evolution_id"] == a["evolution_id"]
    assert answer["decision"] == "accepted"
    assert answer["specification"] == SPEC
    assert answer["decided_by"] == "Pauline Produit"
    assert answer["handed_to"] == [PROJECT_EMAIL]
    dossiers = await pool.fetch(
        "SELECT dossier_id FROM evolutions.requests WHERE evolution_id = $1 ORDER BY recorded_at",
        uuid.UUID(a["evolution_id"]),
    )
    assert answer["dossier_ids"] == [str(r["dossier_id"]) for r in dossiers]

    again = await http.post(url, headers=pm, json=body)
    assert (again.status_code, again.json()) == (200, answer)
    other = await http.post(url, headers=pm, json={"decision": "rejected", "reason": "Non."})
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "already_decided"

    # one event with every requester's dossier: the workflow mails each and closes the dossier
    (accepted,) = await events(pool, "request.accepted", evolution_id=a["evolution_id"])
    assert accepted["id"] == f"{a['evolution_id']}:decided"
    assert accepted["data"]["dossier_ids"] == answer["dossier_ids"]
    assert accepted["data"]["specification"] == SPEC
    assert accepted["data"]["reason"] == "Demandé par deux clients."
    assert accepted["data"]["request_id"] == a["request_id"]

    # the IT project manager gets the specification, once
    (spec_mail,) = await settled(stack, PROJECT_EMAIL, "Export FEC par établissement", 1)
    text = spec_mail.get_body(("plain",)).get_content()
    assert "un fichier par SIRET" in text
    assert "Pauline Produit" in text
    assert spec_mail["Content-Language"] == "fr"

    shown = await http.get(f"/api/v1/evolutions/{a['evolution_id']}", headers=tech)
    assert "<h1>Export FEC par établissement</h1>" in shown.json()["specification_html"]


async def test_rejection_carries_its_reason(
    http: httpx.AsyncClient, system, nc: NATS, pool: asyncpg.Pool, software: str
) -> None:
    ids = await hand_over(nc, hand_over_order(software))
    pm = auth(system.tokens[Role.product_manager])
    r = await http.post(
        f"/api/v1/evolutions/{ids['evolution_id']}/decision",
        headers=pm,
        json={"decision": "rejected", "reason": "Hors du périmètre du produit."},
    )
    assert r.status_code == 200, r.text
    assert r.json()["handed_to"] == []
    (rejected,) = await events(pool, "request.rejected", evolution_id=ids["evolution_id"])
    assert rejected["data"]["reason"] == "Hors du périmètre du produit."
    assert rejected["data"]["dossier_ids"] == [
        (
            await pool.fetchval(
                "SELECT dossier_id::text FROM evolutions.requests WHERE id = $1",
                uuid.UUID(ids["request_id"]),
            )
        )
    ]
    # a decided request cannot be grouped into another
    fresh = await hand_over(nc, hand_over_order(software))
    grouped = await http.post(
        f"/api/v1/evolutions/{fresh['evolution_id']}/group",
        headers=auth(system.tokens[Role.technician]),
        json={"evolutions": [ids["evolution_id"]]},
    )
    assert grouped.status_code == 409
