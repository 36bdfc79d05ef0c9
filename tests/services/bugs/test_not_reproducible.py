"""R8 round trip, over the real stack: the developer cannot reproduce the bug and asks
questions; they reach the customer of every linked dossier; the answer comes back to the
bug; the developer reproduces it and the dossier waits for the fix again."""

from __future__ import annotations

import asyncpg
import httpx

from assistance.bus import Bus
from assistance.directory import Role
from deploy.local.stack import LocalStack
from tests.helpers import auth, eventually
from tests.services.bugs.support import (
    bug_dossier,
    bug_events,
    bug_state,
    dossier_when,
    mail_saying,
    settled,
)

QUESTIONS = "Sous quel système travaillez-vous, et l'export s'arrête-t-il toujours à 50 % ?"


async def test_not_reproducible_questions_go_to_the_customer_and_back(
    http: httpx.AsyncClient, system, bus: Bus, pool: asyncpg.Pool, stack: LocalStack
) -> None:
    tokens = system.tokens
    tech, dev, customer = (
        auth(tokens[r]) for r in (Role.technician, Role.developer, Role.customer)
    )
    dossier_id = await bug_dossier(http, tokens, "Export FEC tronqué")
    base = f"/api/v1/dossiers/{dossier_id}"
    r = await http.post(f"{base}/workaround", headers=tech, json={"text": "Exporter par mois."})
    assert r.status_code == 200, r.text
    dossier = await dossier_when(
        http, tokens[Role.technician], dossier_id, lambda d: bug_state(d) == "reported"
    )
    bug_id = dossier["details"]["bug"]["id"]

    asked = await http.post(
        f"/api/v1/bugs/{bug_id}/not-reproducible", headers=dev, json={"questions": QUESTIONS}
    )
    assert asked.status_code == 200, asked.text
    assert (asked.json()["state"], asked.json()["questions"]) == ("not_reproducible", QUESTIONS)
    assert asked.json()["developer"]["name"] == "David Développeur"  # working on it claims it
    await settled(pool)
    [event] = await bug_events(bus, bug_id, "not_reproducible")
    assert event.data["questions"] == QUESTIONS
    assert event.data["dossier_ids"] == [dossier_id]

    # the customer sees the questions on the dossier and receives them by mail
    mine = await dossier_when(
        http, tokens[Role.customer], dossier_id, lambda d: d["status"] == "waiting_customer"
    )
    assert any(QUESTIONS in e["text"] for e in mine["timeline"])
    reference = mine["reference"]
    await mail_saying(stack, "claire.martin@dupont-sa.fr", reference, QUESTIONS)

    # the customer answers on the dossier; the answer reaches the developers
    answer = "Windows 11 et Firefox 128 ; oui, toujours à 50 %."
    replied = await http.post(f"{base}/responses", headers=customer, json={"text": answer})
    assert replied.status_code == 200, replied.text

    async def answered() -> list | None:
        got = await http.get(f"/api/v1/bugs/{bug_id}", headers=dev)
        return got.json()["answers"] or None

    [received] = await eventually(answered, timeout=10, every=0.2)
    assert (received["dossier_id"], received["text"]) == (dossier_id, answer)
    assert received["author"] == "Claire Martin"

    reproduced = await http.post(
        f"/api/v1/bugs/{bug_id}/reproduced",
        headers=dev,
        json={"steps": "Exercice de 13 mois, export FEC", "environment": "Windows 11, Firefox"},
    )
    assert reproduced.status_code == 200, reproduced.text
    assert reproduced.json()["reproduction"] == {
        "steps": "Exercice de 13 mois, export FEC",
        "environment": "Windows 11, Firefox",
    }
    dossier = await dossier_when(
        http, tokens[Role.technician], dossier_id, lambda d: bug_state(d) == "reproduced"
    )
    assert dossier["status"] == "waiting_service"
    # the customer follows the bug's state on their dossier
    mine = (await http.get(base, headers=customer)).json()
    assert "Bug reproduit par les développeurs." in [e["text"] for e in mine["timeline"]]
