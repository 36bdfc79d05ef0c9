"""R8 end to end over the real stack (Temporal, NATS JetStream, PostgreSQL, SMTP):
diagnosis "bug" → workaround → developers reproduce, diagnose, fix → the version ships →
the customer is mailed which version carries the fix → confirms → the dossier closes."""

from __future__ import annotations

import asyncpg
import httpx

from assistance.bus import Bus
from assistance.directory import Role
from deploy.local.stack import LocalStack
from tests.helpers import auth
from tests.services.bugs.support import (
    bug_dossier,
    bug_state,
    develop,
    dossier_when,
    mail_saying,
    registered_software,
    released,
)
from tests.services.site.test_no_codes import what_people_read

CUSTOMER = "claire.martin@dupont-sa.fr"
WORKAROUND = "En attendant, exportez le FEC mois par mois puis concaténez les fichiers."


async def test_from_diagnosis_bug_to_release_notification_and_closure(
    http: httpx.AsyncClient, system, bus: Bus, pool: asyncpg.Pool, stack: LocalStack
) -> None:
    tokens = system.tokens
    tech, customer = auth(tokens[Role.technician]), auth(tokens[Role.customer])
    code = await registered_software(pool)
    dossier_id = await bug_dossier(http, tokens, "Export FEC : exercice de 13 mois", code)
    base = f"/api/v1/dossiers/{dossier_id}"

    # R8: the workaround first; it goes to the customer and is the first response (R3)
    r = await http.post(f"{base}/workaround", headers=tech, json={"text": WORKAROUND})
    assert r.status_code == 200, r.text
    assert r.json()["first_responded_at"] is not None
    dossier = await dossier_when(
        http, tokens[Role.technician], dossier_id, lambda d: bug_state(d) == "reported"
    )
    reference, bug_id = dossier["reference"], dossier["details"]["bug"]["id"]
    await mail_saying(stack, CUSTOMER, reference, WORKAROUND)

    # the workaround base now holds it, for the next technician with the same problem
    found = await http.get(
        "/api/v1/workarounds",
        headers=tech,
        params={"software": code, "version": "5.2", "q": "export FEC mois"},
    )
    assert [(w["dossier_id"], w["bug"]["id"]) for w in found.json()["items"]] == [
        (dossier_id, bug_id)
    ]

    # the developers' work, over their API; the dossier shows each state
    listed = await http.get(
        "/api/v1/bugs", headers=auth(tokens[Role.developer]), params={"state": "new"}
    )
    assert bug_id in [b["id"] for b in listed.json()["items"]]
    fix = await develop(http, tokens, bug_id, upto="fix-completed")
    assert fix["version"] == "5.3"
    dossier = await dossier_when(
        http, tokens[Role.technician], dossier_id, lambda d: bug_state(d) == "fix_completed"
    )
    assert dossier["status"] == "waiting_service"
    shown = [e["text"] for e in (await http.get(base, headers=customer)).json()["timeline"]]
    for label in (
        "Bug transmis aux développeurs.",
        "Bug reproduit par les développeurs.",
        "Cause du bug identifiée.",
        "Correctif développé ; il sera livré dans une prochaine version.",
    ):
        assert label in shown

    # the version ships: the customer is told, in French, which version carries the fix
    await released(bus, code, "5.3")
    mail = await mail_saying(stack, CUSTOMER, reference, f"dans la version 5.3 de Logiciel {code}")
    assert mail["Content-Language"] == "fr"
    dossier = await dossier_when(
        http, tokens[Role.technician], dossier_id, lambda d: d["status"] == "resolved"
    )
    assert dossier["details"]["bug"]["fixed_in"] == "5.3"
    bug = (await http.get(f"/api/v1/bugs/{bug_id}", headers=tech)).json()
    assert (bug["state"], bug["release"]["version"]) == ("released", "5.3")

    # the customer confirms: the dossier closes with the fix as its resolution (R10)
    confirmed = await http.post(f"{base}/confirm", headers=customer)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "closed"
    assert confirmed.json()["resolution"] == "Corrigé dans la version 5.3."

    # issue 14: every mail sent about it and every page its customer reads is French
    await mail_saying(stack, CUSTOMER, reference, "Corrigé dans la version 5.3.")  # the closure
    assert await what_people_read(system, stack, dossier_id, reference, CUSTOMER) == {}
