"""R13: deposits keep working while Temporal and NATS are down; nothing accepted is lost."""

from __future__ import annotations

import uuid

import httpx
from temporalio.client import Client

from assistance.directory import Role
from deploy.local.stack import LocalStack
from tests.helpers import auth, deposit_body, eventually


async def test_deposit_accepted_while_temporal_and_nats_are_down(
    http: httpx.AsyncClient, system, stack: LocalStack
) -> None:
    await stack.stop_temporal()
    await stack.stop_nats()
    try:
        accepted = []
        for i in range(3):
            r = await http.post("/api/v1/requests", json=deposit_body(subject=f"Panne {i}"))
            assert r.status_code == 201, r.text
            accepted.append(r.json())
        ready = await http.get("/readyz")
        assert ready.status_code == 503  # commands need Temporal and NATS ...
        assert ready.json()["dependencies"] == {
            "postgres": "up",
            "nats": "down",
            "temporal": "down",
        }
        assert ready.json()["deposits"] == "accepted"  # ... deposits do not (R13)
        assert ready.json()["commands"] == "unavailable"

        # accepted is readable at once, as a new dossier, though not projected yet
        staff = auth(system.tokens[Role.technician])
        early = await http.get(f"/api/v1/dossiers/{accepted[0]['id']}", headers=staff)
        assert early.status_code == 200, early.text
        assert (early.json()["reference"], early.json()["status"]) == (
            accepted[0]["reference"],
            "new",
        )
        assert [e["kind"] for e in early.json()["timeline"]] == ["received"]
        # read from its `received` event in the outbox: its organisation's customer sees it
        customer = auth(system.tokens[Role.customer])
        own = await http.get(f"/api/v1/dossiers/{accepted[0]['id']}", headers=customer)
        assert own.status_code == 200, own.text
        assert own.json() == early.json()

        # its requester asks for their follow links: the dossier accepted a moment ago is in
        # the mail, found by its `received` event not sent yet
        address = f"panne-{uuid.uuid4().hex[:8]}@exemple-client.fr"
        body = deposit_body(subject="Panne suivie")
        body["requester"] = {"email": address, "name": "Lise Panne"}
        deposit = await http.post("/api/v1/requests", json=body)
        assert deposit.status_code == 201, deposit.text
        accepted.append(deposit.json())
        asked = await http.post("/api/v1/follow-links", json={"email": address})
        assert asked.status_code == 202, asked.text
        mail = await stack.mail.wait_for(
            lambda m: address in m.rcpt_tos and "liens de suivi" in str(m.message()["Subject"]),
            timeout=30,
        )
        assert deposit.json()["reference"] in mail.message().get_body(("plain",)).get_content()
    finally:
        await stack.start_nats()
        await stack.start_temporal()

    staff = auth(system.tokens[Role.technician])
    client = await Client.connect(stack.endpoints.temporal_address)
    for body in accepted:

        async def workflow_running(dossier_id: str = body["id"]) -> bool:
            try:
                desc = await client.get_workflow_handle(dossier_id).describe()
            except Exception:  # noqa: BLE001 - not started yet
                return False
            return desc.workflow_type == "DossierWorkflow"

        async def projected(dossier_id: str = body["id"]) -> dict | None:
            got = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=staff)
            if got.status_code != 200:
                return None
            dossier = got.json()
            return dossier if any(e["kind"] == "opened" for e in dossier["timeline"]) else None

        assert await eventually(workflow_running, timeout=60, every=0.5)
        dossier = await eventually(projected, timeout=30, every=0.5)
        assert dossier["reference"] == body["reference"]
