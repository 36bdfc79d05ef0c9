"""RGPD right of access (issue 13 item 5): an administrator exports everything about the demo
customer, as JSON or as a ZIP with their files; nobody else may; the export is audited."""

from __future__ import annotations

import io
import json
import zipfile

import httpx

from assistance.directory import Role
from tests.helpers import auth, deposit_body, eventually

CLAIRE = "claire.martin@dupont-sa.fr"


async def test_an_admin_exports_everything_about_a_person(http: httpx.AsyncClient, system) -> None:
    admin = auth(system.tokens[Role.admin])
    r = await http.post("/api/v1/requests", json=deposit_body(subject="Export RGPD"))
    dossier_id = r.json()["id"]

    async def exported() -> dict | None:
        got = await http.get(f"/api/v1/operations/personal-data?email={CLAIRE}", headers=admin)
        assert got.status_code == 200, got.text
        body = got.json()
        return body if any(d["id"] == dossier_id for d in body["dossiers"]) else None

    body = await eventually(exported, timeout=20)
    assert body["email"] == CLAIRE
    assert body["user"]["name"] == "Claire Martin"
    assert dossier_id in [q["id"] for q in body["requests"]]
    assert "Export RGPD" in [q["subject"] for q in body["requests"]]
    assert all(e["visibility"] == "customer" for e in body["timeline"])
    assert set(body) >= {"mails", "mail_attachments", "ratings", "appointments", "sign_ins"}

    zipped = await http.get(
        f"/api/v1/operations/personal-data?email={CLAIRE.upper()}&format=zip", headers=admin
    )
    assert zipped.status_code == 200
    assert zipped.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as z:
        inside = json.loads(z.read("personne.json"))
    assert dossier_id in [q["id"] for q in inside["requests"]]

    nobody = await http.get(
        "/api/v1/operations/personal-data?email=personne@nulle-part.example", headers=admin
    )
    assert nobody.status_code == 200 and nobody.json()["user"] is None
    assert nobody.json()["dossiers"] == []
    for role in (Role.technician, Role.customer):
        refused = await http.get(
            f"/api/v1/operations/personal-data?email={CLAIRE}", headers=auth(system.tokens[role])
        )
        assert refused.status_code == 403
    bad = await http.get("/api/v1/operations/personal-data?email=pas-une-adresse", headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "email"

    trail = await http.get(
        f"/api/v1/operations/audit?action=personal_data.&target={CLAIRE}", headers=admin
    )
    formats = [(e["action"], e["details"]["format"]) for e in trail.json()]
    assert formats[:2] == [("personal_data.exported", "zip"), ("personal_data.exported", "json")]
