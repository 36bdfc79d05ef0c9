"""R7 end to end over the real stack (Temporal, NATS JetStream, PostgreSQL, SMTP): a deposit
→ diagnosis "advanced usage" → the workflow hands over → an appointment is booked with a
personalised brief (engagement 4) and the invitations go out → the trainer marks it held →
the dossier proposes the resolution → the customer confirms → the dossier is closed."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from assistance.directory import Role
from deploy.local.stack import LocalStack
from tests.helpers import auth, deposit_body, eventually
from tests.services.site.test_no_codes import what_people_read
from tests.services.training.support import NewTrainer

CUSTOMER = "claire.martin@dupont-sa.fr"
NOTES = "Lettrage automatique paramétré ; règles de rapprochement revues avec la cliente."


async def deposit(http: httpx.AsyncClient, software: str, subject: str) -> dict[str, Any]:
    r = await http.post("/api/v1/requests", json=deposit_body(software=software, subject=subject))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def dossier_when(
    http: httpx.AsyncClient, token: str, dossier_id: str, ok: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        r = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=auth(token))
        return r.json() if r.status_code == 200 and ok(r.json()) else None

    return await eventually(probe, timeout=20)


async def test_from_advanced_usage_to_training_held_and_dossier_closed(
    system,
    http: httpx.AsyncClient,
    pool: asyncpg.Pool,
    stack: LocalStack,
    software: str,
    new_trainer: NewTrainer,
) -> None:
    tokens = system.tokens
    tech, customer = auth(tokens[Role.technician]), auth(tokens[Role.customer])
    fanny = await new_trainer(software)

    # an earlier dossier of the same client, known to training through the DOSSIER stream
    earlier = await deposit(http, software, "Import des relevés bancaires")

    async def recorded() -> bool:
        return bool(
            await pool.fetchval(
                "SELECT 1 FROM training.client_dossiers WHERE dossier_id = $1",
                uuid.UUID(earlier["id"]),
            )
        )

    await eventually(recorded, timeout=20)

    opened = await deposit(http, software, "Paramétrer le lettrage automatique")
    dossier_id, base = opened["id"], f"/api/v1/dossiers/{opened['id']}"
    await dossier_when(  # the workflow runs: commands can be sent
        http,
        tokens[Role.technician],
        dossier_id,
        lambda d: any(e["kind"] == "opened" for e in d["timeline"]),
    )
    assert (await http.post(f"{base}/take", headers=tech)).status_code == 200
    r = await http.post(
        f"{base}/diagnosis",
        headers=tech,
        json={
            "kind": "advanced_usage",
            "context": "Clôture mensuelle sur 3 sites, 12 comptables",
            "need": "Lettrage automatique des comptes clients",
            "version": "5.2",
        },
    )
    assert r.status_code == 200, r.text

    # R7: the workflow's hand-over books the earliest slot; the dossier shows it
    async def booked() -> list[dict[str, Any]] | None:
        r = await http.get(f"/api/v1/training/appointments?dossier={dossier_id}", headers=tech)
        return r.json()["items"] or None

    (appointment,) = await eventually(booked, timeout=20)
    assert appointment["trainer"]["id"] == str(fanny.id)
    assert appointment["requester"]["email"] == CUSTOMER
    brief = appointment["brief"]
    assert brief["context"] == "Clôture mensuelle sur 3 sites, 12 comptables"
    assert brief["need"] == "Lettrage automatique des comptes clients"
    assert (brief["software"], brief["version"]) == (software, "5.2")
    assert brief["organisation"]["context"] == "Cabinet comptable de 40 personnes, 3 sites."
    assert earlier["reference"] in [d["reference"] for d in brief["previous_dossiers"]]
    dossier = await dossier_when(
        http,
        tokens[Role.technician],
        dossier_id,
        lambda d: any(e["kind"] == "training" for e in d["timeline"]),
    )
    assert dossier["status"] == "waiting_service"
    assert dossier["details"]["training"]["appointment_id"] == appointment["id"]
    await stack.mail.wait_for(
        lambda m: CUSTOMER in m.rcpt_tos and f"training.{appointment['id']}.0." in m.data.decode()
    )

    # the trainer holds the session; the dossier proposes the resolution, the customer confirms
    r = await http.post(
        f"/api/v1/training/appointments/{appointment['id']}/held",
        json={"notes": NOTES},
        headers=fanny.headers,
    )
    assert r.status_code == 200, r.text
    await dossier_when(
        http, tokens[Role.technician], dossier_id, lambda d: d["status"] == "resolved"
    )
    r = await http.post(f"{base}/confirm", headers=customer)
    assert r.status_code == 200, r.text
    closed = await dossier_when(
        http, tokens[Role.technician], dossier_id, lambda d: d["status"] == "closed"
    )
    assert closed["resolution"] == f"Formation effectuée : {NOTES}"
    assert closed["kind"] == "advanced_usage"

    # the closing reaches training's history too, for the next brief of this client
    async def closed_in_history() -> bool:
        return (
            await pool.fetchval(
                "SELECT status FROM training.client_dossiers WHERE dossier_id = $1",
                uuid.UUID(dossier_id),
            )
            == "closed"
        )

    await eventually(closed_in_history, timeout=20)

    # issue 14: every mail sent about it (the customer's, the trainer's invitation) and every
    # page its customer reads is French
    reference = closed["reference"]
    assert await what_people_read(system, stack, dossier_id, reference, CUSTOMER) == {}
