"""R9 end to end over the real stack: a deposit diagnosed "evolution" is handed over by the
dossier workflow, recorded in the backlog, decided by the product manager; the customer gets
the decision in French, once, and the dossier closes; the release tells them it shipped."""

from __future__ import annotations

import asyncio
import re
import uuid

import asyncpg
import httpx

from assistance.directory import Role
from deploy.local.stack import CaughtMail, LocalStack
from tests.helpers import auth, deposit_body, eventually
from tests.services.evolutions.support import mails, settled
from tests.services.site.test_no_codes import what_people_read

CLAIRE = "claire.martin@dupont-sa.fr"


async def test_from_diagnosis_to_decision_mail_and_shipping(
    http: httpx.AsyncClient, system, stack: LocalStack, pool: asyncpg.Pool
) -> None:
    tech = auth(system.tokens[Role.technician])
    pm = auth(system.tokens[Role.product_manager])
    deposited = await http.post(
        "/api/v1/requests", json=deposit_body(subject="Export FEC par établissement")
    )
    assert deposited.status_code == 201, deposited.text
    dossier_id, reference = deposited.json()["id"], deposited.json()["reference"]
    base = f"/api/v1/dossiers/{dossier_id}"

    async def opened() -> bool:
        got = await http.get(base, headers=tech)
        return got.status_code == 200 and any(e["kind"] == "opened" for e in got.json()["timeline"])

    await eventually(opened, timeout=15)
    assert (await http.post(f"{base}/take", headers=tech)).status_code == 200
    diagnosed = await http.post(
        f"{base}/diagnosis",
        headers=tech,
        json={
            "kind": "evolution",
            "context": "Cabinet comptable de 40 personnes, 3 sites",
            "need": "Un export FEC par établissement",
            "version": "5.2",
        },
    )
    assert diagnosed.status_code == 200, diagnosed.text

    # the workflow hands over over NATS; the request enters the software's backlog
    async def recorded() -> asyncpg.Record | None:
        return await pool.fetchrow(
            "SELECT * FROM evolutions.requests WHERE dossier_id = $1", uuid.UUID(dossier_id)
        )

    request = await eventually(recorded, timeout=20)
    assert (request["software"], request["reference"]) == ("manao-compta", reference)
    assert request["need"] == "Un export FEC par établissement"
    assert request["organisation_name"] == "Dupont SA"

    async def waiting() -> bool:
        dossier = (await http.get(base, headers=tech)).json()
        return dossier["status"] == "waiting_service"

    await eventually(waiting, timeout=15)

    decision = {
        "decision": "accepted",
        "reason": "Utile à plusieurs cabinets.",
        "specification": "# Export FEC par établissement\n\nUn fichier par SIRET.",
        "title": "Export FEC par établissement",
    }
    url = f"/api/v1/evolutions/{request['evolution_id']}/decision"
    decided = await http.post(url, headers=pm, json=decision)
    assert decided.status_code == 200, decided.text
    assert decided.json()["dossier_ids"] == [dossier_id]
    assert (await http.post(url, headers=pm, json=decision)).json() == decided.json()

    # the customer is told in French, exactly once, and the dossier closes
    await stack.mail.wait_for(lambda m: is_decision(m, reference), timeout=20)
    await asyncio.sleep(1.5)  # a duplicate would have arrived by now
    (told,) = decision_mails(stack, reference)
    assert f"[{reference}]" in str(told["Subject"])
    text = told.get_body(("plain",)).get_content()
    assert "Votre demande d'évolution a été acceptée" in text
    assert "Un fichier par SIRET." in text

    async def closed() -> dict | None:
        dossier = (await http.get(base, headers=tech)).json()
        return dossier if dossier["status"] == "closed" else None

    dossier = await eventually(closed, timeout=15)
    assert "acceptée" in dossier["resolution"]

    # the release: the requester hears again, once, although the dossier is closed
    released = await http.post(
        "/api/v1/softwares/manao-compta/releases",
        headers=pm,
        json={
            "version": f"5.3.{uuid.uuid4().int % 100_000}",
            "notes": "Export FEC par établissement.",
            "evolutions": [str(request["evolution_id"])],
        },
    )
    assert released.status_code == 201, released.text
    version = released.json()["version"]
    (shipped,) = await settled(stack, CLAIRE, f"Manao Compta {version}", 1)
    assert f"[{reference}]" in str(shipped["Subject"])
    assert f"version {version}" in shipped.get_body(("plain",)).get_content()
    # its links lead to pages (the documentation, the announcements) and to the feed
    links = re.findall(r"https?://\S+", shipped.get_body(("plain",)).get_content())
    assert len(links) == 3, links
    async with httpx.AsyncClient(timeout=30, headers={"Accept": "text/html"}) as web:
        for link in links:
            assert (await web.get(link.rstrip(")"))).status_code == 200, link
    assert (await http.get(base, headers=tech)).json()["status"] == "closed"

    # issue 14: every mail sent about it and every page its customer reads is French
    assert await what_people_read(system, stack, dossier_id, reference, CLAIRE) == {}


def decision_mails(stack: LocalStack, reference: str) -> list:
    return [
        m
        for m in mails(stack, CLAIRE, reference)
        if "acceptée" in m.get_body(("plain",)).get_content()
    ]


def is_decision(mail: CaughtMail, reference: str) -> bool:
    """This one caught mail is the decision (parsing only it: `wait_for` calls this per mail)."""
    message = mail.message()
    return (
        CLAIRE in mail.rcpt_tos
        and reference in str(message["Subject"])
        and "acceptée" in message.get_body(("plain",)).get_content()
    )
