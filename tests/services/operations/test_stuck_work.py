"""Poison never freezes (issue 11, items 5 and 6), on the whole system with real servers: an
event the projection cannot store is parked after its attempts, the stream goes on, every
administrator is mailed, the item is in the « travail bloqué » view, and once the cause is
repaired a retry projects it, recorded in the dossier's history."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from assistance import db, directory
from assistance.directory import Role
from assistance.events import Event
from assistance.failures import FailurePolicy
from deploy.local.stack import LocalStack
from tests.helpers import auth, deposit_body, eventually

# What takes minutes in production (8 attempts over 1+2+5+…+120 s) takes a second here.
FAST = FailurePolicy(max_attempts=3, backoff_s=(0.2,), outage_first_s=0.1, outage_max_s=0.5)


async def _timeline(http: httpx.AsyncClient, staff: dict[str, str], dossier_id: str) -> list[dict]:
    got = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=staff)
    assert got.status_code == 200, got.text
    return list(got.json()["timeline"])


async def test_a_poison_event_is_parked_told_shown_and_retried_after_repair(
    http: httpx.AsyncClient, system: Any, stack: LocalStack
) -> None:
    rt = system.app.state.runtime
    admin = auth(system.tokens[Role.admin])
    staff = auth(system.tokens[Role.technician])
    deposited = await http.post("/api/v1/requests", json=deposit_body(subject="Poison"))
    assert deposited.status_code == 201, deposited.text
    dossier_id, reference = deposited.json()["id"], deposited.json()["reference"]

    async def opened() -> list[dict] | None:
        got = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=staff)
        if got.status_code != 200:
            return None
        timeline = got.json()["timeline"]
        return timeline if any(e["kind"] == "opened" for e in timeline) else None

    await eventually(opened, timeout=60)
    pool: asyncpg.Pool = await db.create_pool(system.settings.database_url, 2)
    policy, rt.bus.policy = rt.bus.policy, FAST
    marker = f"panne-{uuid.uuid4().hex[:6]}"
    try:
        # The "bug" to repair later: the read model refuses this text (think of a NUL byte).
        await pool.execute(
            f"""ALTER TABLE dossier.timeline ADD CONSTRAINT refuse_{marker.replace("-", "_")}
                CHECK (text NOT LIKE '%{marker}%') NOT VALID"""
        )

        def note(n: int, text: str) -> Event:
            return Event(
                id=f"{dossier_id}:{marker}:{n}",
                type="dossier.dossier.noted",
                occurred_at=datetime.now(UTC),
                data={
                    "dossier_id": dossier_id,
                    "reference": reference,
                    "seq": 900 + n,
                    "timeline": {"kind": "note", "visibility": "internal", "text": text},
                },
            )

        await rt.bus.publish(note(1, f"Note bloquante {marker}"))
        await rt.bus.publish(note(2, "Note suivante"))

        # the stream goes on: the next event is projected while the first one is parked
        async def next_projected() -> bool:
            return any(
                e["text"] == "Note suivante" for e in await _timeline(http, staff, dossier_id)
            )

        await eventually(next_projected, timeout=30)

        async def parked_in_view() -> dict | None:
            got = await http.get("/api/v1/operations/stuck", headers=admin)
            assert got.status_code == 200, got.text
            return next(
                (
                    p
                    for p in got.json()["parked"]
                    if p["subject"] == "dossier.dossier.noted" and p["dossier_id"] == dossier_id
                ),
                None,
            )

        item = await eventually(parked_in_view, timeout=30)
        assert item["label"] == "Message non traité : mise à jour du dossier"
        assert item["reference"] == reference
        assert item["attempts"] == 3
        assert item["state"] == "open"
        assert item["error"].startswith("gave up after 3 attempts: CheckViolationError(")
        view = (await http.get("/api/v1/operations/stuck", headers=admin)).json()
        assert view["counts"]["parked"] >= 1
        assert {c["name"] for c in view["consumers"]} >= {"dossier-projection"}

        # every administrator is mailed, in French, with the dossier's reference
        admins = await directory.emails_with_role(pool, Role.admin)
        assert admins
        for to in admins:
            mail = await stack.mail.wait_for(
                lambda m, to=to: (
                    to in m.rcpt_tos
                    and m.message()["Subject"].startswith("Travail bloqué")
                    and reference in m.message().get_content()
                ),
                timeout=30,
            )
            body = mail.message().get_content()
            assert "Message non traité : mise à jour du dossier — dossier " + reference in body
            assert "/bureau/operations" in body

        # a technician may not see nor act
        assert (await http.get("/api/v1/operations/stuck", headers=staff)).status_code == 403

        # repair, then retry: projected once, and the retry is in the dossier's history
        await pool.execute(
            f"ALTER TABLE dossier.timeline DROP CONSTRAINT refuse_{marker.replace('-', '_')}"
        )
        key = {"Idempotency-Key": f"retry-{marker}"}
        first = await http.post(
            f"/api/v1/operations/stuck/{item['id']}/retry", headers={**admin, **key}
        )
        assert first.status_code == 200, first.text
        assert first.json()["state"] == "retried"
        again = await http.post(f"/api/v1/operations/stuck/{item['id']}/retry", headers=admin)
        assert again.status_code == 200
        assert again.json()["state"] == "retried"
        discard = await http.post(f"/api/v1/operations/stuck/{item['id']}/discard", headers=admin)
        assert discard.status_code == 409
        assert discard.json()["error"]["code"] == "parked_not_open"

        async def retried_and_recorded() -> list[dict] | None:
            timeline = await _timeline(http, staff, dossier_id)
            texts = [e["text"] for e in timeline]
            if f"Note bloquante {marker}" in texts and any(
                e["kind"] == "operations" for e in timeline
            ):
                return timeline
            return None

        timeline = await eventually(retried_and_recorded, timeout=30)
        texts = [e["text"] for e in timeline]
        assert texts.count(f"Note bloquante {marker}") == 1
        admin_name = await pool.fetchval(
            "SELECT name FROM directory.users WHERE role = 'admin' ORDER BY email LIMIT 1"
        )
        recorded = [e for e in timeline if e["kind"] == "operations"]
        assert len(recorded) == 1
        assert recorded[0]["text"].startswith("Travail bloqué relancé par ")
        assert recorded[0]["text"].endswith(
            "après réparation : Message non traité : mise à jour du dossier."
        )
        assert admin_name
        view = (await http.get("/api/v1/operations/stuck", headers=admin)).json()
        assert item["id"] not in [p["id"] for p in view["parked"]]
        assert await pool.fetchval("SELECT state FROM bus.parked WHERE id = $1", item["id"]) == (
            "retried"
        )
    finally:
        rt.bus.policy = policy
        await pool.close()


async def test_a_parked_side_effect_is_run_again_by_its_workflow(
    http: httpx.AsyncClient, system: Any, stack: LocalStack
) -> None:
    """Retrying a parked activity signals the dossier's workflow, which runs it again (here a
    notice to the administrators, as the worker parked it) and the retry is in the history."""
    admin = auth(system.tokens[Role.admin])
    staff = auth(system.tokens[Role.technician])
    deposited = await http.post("/api/v1/requests", json=deposit_body(subject="Relance"))
    assert deposited.status_code == 201, deposited.text
    dossier_id, reference = deposited.json()["id"], deposited.json()["reference"]

    async def opened() -> bool:
        got = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=staff)
        return got.status_code == 200 and any(e["kind"] == "opened" for e in got.json()["timeline"])

    await eventually(opened, timeout=60)
    marker = uuid.uuid4().hex[:8]
    notice = {
        "dossier_id": dossier_id,
        "reference": reference,
        "step": 900,
        "audience": "admins",
        "kind": "escalation",
        "subject": f"Avis relancé {marker}",
        "text": "Avis parqué puis relancé.",
        "technician_id": None,
    }
    pool: asyncpg.Pool = await db.create_pool(system.settings.database_url, 2)
    try:
        parked_id = await pool.fetchval(
            """INSERT INTO bus.parked (source, name, kind, ref, subject, data, error, attempts,
                   dossier_id, notified_at)
               VALUES ('activity', 'notify_staff', 'notify_staff', $1, 'DossierWorkflow', $2,
                       'gave up after 10 attempts: OSError: disque plein', 10, $3, now())
               RETURNING id""",
            f"{dossier_id}:run:{marker}",
            json.dumps([notice]),
            uuid.UUID(dossier_id),
        )
        got = await http.post(f"/api/v1/operations/stuck/{parked_id}/retry", headers=admin)
        assert got.status_code == 200, got.text
        assert got.json()["label"] == "Action automatique d'un dossier : avis à l'équipe"
        admins = await directory.emails_with_role(pool, Role.admin)
        for to in admins:
            await stack.mail.wait_for(
                lambda m, to=to: to in m.rcpt_tos and marker in str(m.message()["Subject"]),
                timeout=30,
            )

        async def recorded() -> list[dict] | None:
            timeline = await _timeline(http, staff, dossier_id)
            ops = [e for e in timeline if e["kind"] == "operations"]
            return ops or None

        ops = await eventually(recorded, timeout=30)
        assert len(ops) == 1
        assert ops[0]["text"].endswith(
            "après réparation : Action automatique d'un dossier : avis à l'équipe."
        )
        mails = [m for m in stack.mail.messages if marker in str(m.message()["Subject"])]
        assert len(mails) == len(admins)  # once each
    finally:
        await pool.close()
