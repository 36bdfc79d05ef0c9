"""The lifecycle over the real stack: deposit → take → diagnose (usage) → respond → close,
with the customer's mails caught by a real SMTP server and, like every kind's end-to-end test,
every mail and customer page scanned for codes and English; and every refused transition."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy

import httpx

from assistance.directory import Role
from assistance.mail import verify_message_id
from deploy.local.stack import LocalStack
from tests.helpers import auth, deposit_body, eventually
from tests.services.site.test_no_codes import what_people_read


async def _deposit(http: httpx.AsyncClient, system, **overrides) -> str:
    r = await http.post("/api/v1/requests", json=deposit_body(**overrides))
    assert r.status_code == 201, r.text
    dossier_id = r.json()["id"]
    staff = auth(system.tokens[Role.technician])

    async def opened() -> bool:
        got = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=staff)
        return got.status_code == 200 and any(e["kind"] == "opened" for e in got.json()["timeline"])

    await eventually(opened, timeout=30)
    return dossier_id


def _mails_to(stack: LocalStack, address: str, reference: str) -> list:
    found = []
    for caught in stack.mail.messages:
        msg = message_from_bytes(caught.data, policy=default_policy)
        if address in caught.rcpt_tos and reference in str(msg["Subject"]):
            found.append(msg)
    return found


async def test_usage_question_from_deposit_to_closure(
    http: httpx.AsyncClient, system, stack: LocalStack
) -> None:
    dossier_id = await _deposit(http, system, subject="Droits d'accès aux exports")
    tech = auth(system.tokens[Role.technician])
    customer = auth(system.tokens[Role.customer])
    base = f"/api/v1/dossiers/{dossier_id}"

    taken = await http.post(f"{base}/take", headers=tech)
    assert taken.status_code == 200, taken.text
    assert taken.json()["status"] == "in_progress"
    assert taken.json()["technician"]["name"] == "Thomas Technicien"

    diagnosed = await http.post(
        f"{base}/diagnosis",
        headers=tech,
        json={
            "kind": "usage",
            "context": "Cabinet comptable, clôture mensuelle",
            "need": "Donner le droit d'export à une collaboratrice",
        },
    )
    assert diagnosed.status_code == 200, diagnosed.text
    assert diagnosed.json()["kind"] == "usage"
    assert "usage_target" in diagnosed.json()["details"]

    shared = await http.post(f"{base}/screen-share", headers=tech)
    assert shared.status_code == 200
    link = shared.json()["details"]["screen_share"]
    assert link.startswith("https://partage.manao.eu/salle/") and len(link) > 40

    answered = await http.post(
        f"{base}/responses",
        headers=tech,
        json={"text": "Menu Paramètres > Utilisateurs > Droits : cochez « Exporter »."},
    )
    assert answered.status_code == 200
    assert answered.json()["first_responded_at"] is not None

    closed = await http.post(
        f"{base}/close",
        headers=tech,
        json={"resolution": "Droit d'export accordé pendant le partage d'écran."},
    )
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert body["status"] == "closed" and body["closed_at"]
    assert body["resolution"] == "Droit d'export accordé pendant le partage d'écran."
    kinds = [e["kind"] for e in body["timeline"]]
    for expected in (
        "received",
        "opened",
        "taken",
        "diagnosed",
        "screen_share",
        "response",
        "closed",
    ):
        assert expected in kinds, kinds

    # the customer sees the answer and the closure, but not the internal diagnosis note
    mine = (await http.get(base, headers=customer)).json()
    assert mine["status"] == "closed"
    assert "diagnosis" not in [e["kind"] for e in mine["timeline"]]

    reference = body["reference"]

    async def four_mails() -> list | None:
        mails = _mails_to(stack, "claire.martin@dupont-sa.fr", reference)
        return mails if len(mails) >= 4 else None

    mails = await eventually(four_mails, timeout=30)
    texts = [m.get_body(preferencelist=("plain",)).get_content() for m in mails]
    assert any("Exporter" in t for t in texts)  # the response
    assert any("Droit d'export accordé" in t for t in texts)  # the closure
    assert any(link in t for t in texts)  # the screen-sharing room
    acknowledgement = next(m for m in mails if m["Auto-Submitted"] == "auto-replied")
    assert f"[{reference}]" in acknowledgement["Subject"]
    # every mail of the dossier threads on the first one and carries a signed id
    first_id = acknowledgement["Message-ID"]
    assert verify_message_id(first_id, system.settings.mail_signing_key) is not None
    for m in mails:
        if m is not acknowledgement:
            assert first_id in str(m["References"])

    # issue 14: what people read of it, mails and the customer's pages, is French
    customer_email = "claire.martin@dupont-sa.fr"
    assert await what_people_read(system, stack, dossier_id, reference, customer_email) == {}


async def test_refused_transitions_say_why(http: httpx.AsyncClient, system) -> None:
    dossier_id = await _deposit(http, system, subject="Transitions")
    tech = auth(system.tokens[Role.technician])
    admin = auth(system.tokens[Role.admin])
    customer = auth(system.tokens[Role.customer])
    base = f"/api/v1/dossiers/{dossier_id}"

    async def refused(path: str, headers: dict, json: dict | None, code: str) -> None:
        r = await http.post(f"{base}/{path}", headers=headers, json=json or {})
        assert r.status_code == 409, (path, r.status_code, r.text)
        error = r.json()["error"]
        assert error["code"] == code, (path, error)
        assert error["message"]

    diagnosis = {"kind": "usage", "context": "c", "need": "n"}
    await refused("diagnosis", tech, diagnosis, "not_taken")
    await refused("responses", tech, {"text": "Bonjour"}, "not_taken")
    await refused("close", tech, {"resolution": "x"}, "not_taken")
    await refused("reopen", tech, {"reason": "x"}, "not_closed")
    await refused("confirm", customer, None, "not_resolved")
    assert (await http.post(f"{base}/take", headers=tech)).status_code == 200
    await refused("take", tech, None, "already_yours")
    await refused("close", tech, {"resolution": "Réglé"}, "not_diagnosed")
    await refused("workaround", tech, {"text": "Passer par l'export CSV"}, "not_a_bug")
    assert (await http.post(f"{base}/diagnosis", headers=tech, json=diagnosis)).status_code == 200
    await refused("workaround", tech, {"text": "x"}, "not_a_bug")
    # an admin steps in only by an explicit take-over, recorded on the dossier (issue 13)
    await refused("take", admin, None, "takeover_required")
    taken_over = await http.post(f"{base}/take?takeover=true", headers=admin)
    assert taken_over.status_code == 200, taken_over.text
    assert taken_over.json()["timeline"][-1]["text"] == (
        "Repris par Alice Admin (suivi jusque-là par Thomas Technicien)."
    )
    # a customer may not act as a technician; other staff may not write notes
    trainer = auth(system.tokens[Role.trainer])
    r = await http.post(f"{base}/notes", headers=trainer, json={"text": "Vu"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert (await http.post(f"{base}/take", headers=customer)).status_code == 403
    await refused("diagnosis", tech, diagnosis, "taken_by_another")
    assert (
        await http.post(f"{base}/close", headers=admin, json={"resolution": "Réglé"})
    ).status_code == 200
    await refused("close", admin, {"resolution": "encore"}, "dossier_closed")
    await refused("responses", customer, {"text": "merci"}, "dossier_closed")
    # bad bodies are 422 with the field, not 409
    r = await http.post(f"{base}/reopen", headers=customer, json={"reason": ""})
    assert r.status_code == 422 and r.json()["error"]["field"] == "reason"
    reopened = await http.post(
        f"{base}/reopen", headers=customer, json={"reason": "Le problème revient"}
    )
    assert reopened.status_code == 200
    assert reopened.json()["status"] == "in_progress"
    assert [e["kind"] for e in reopened.json()["timeline"]].count("closed") == 1
    missing = await http.post(
        "/api/v1/dossiers/00000000-0000-0000-0000-000000000000/take", headers=tech
    )
    assert missing.status_code == 404
