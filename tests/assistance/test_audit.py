"""The audit trail (issue 13 item 6): staff reads of dossiers, sign-ins and permission changes,
with who, when and from where; administrators read it as JSON or CSV, nobody else."""

from __future__ import annotations

import csv
import io

import httpx

from assistance.directory import Role
from tests.helpers import auth, deposit_body
from tests.services.site.support import EMAIL_OF, csrf_of


async def test_reads_sign_ins_and_permission_changes_are_audited(
    http: httpx.AsyncClient, system
) -> None:
    tokens = system.tokens
    admin = auth(tokens[Role.admin])
    deposited = await http.post(
        "/api/v1/requests", json=deposit_body(subject="Audit"), headers=auth(tokens[Role.customer])
    )
    dossier_id = deposited.json()["id"]
    assert (
        await http.get(f"/api/v1/dossiers/{dossier_id}", headers=auth(tokens[Role.customer]))
    ).status_code == 200
    assert (
        await http.get(f"/api/v1/dossiers/{dossier_id}", headers=auth(tokens[Role.trainer]))
    ).status_code == 200

    async with httpx.AsyncClient(base_url=system.base_url, timeout=20) as web:
        csrf = csrf_of((await web.get("/connexion")).text)
        await web.post(
            "/connexion",
            data={"csrf": csrf, "email": EMAIL_OF[Role.developer], "token": tokens[Role.developer]},
        )
    pm_id = (
        await http.get("/api/v1/softwares/manao-compta/product-managers", headers=admin)
    ).json()[0]["user_id"]
    granted = await http.put(
        f"/api/v1/softwares/manao-paie/product-managers/{pm_id}", headers=admin
    )
    assert granted.status_code in (200, 201), granted.text

    r = await http.get(f"/api/v1/operations/audit?target={dossier_id}", headers=admin)
    assert r.status_code == 200, r.text
    reads = r.json()
    # the trainer's read, not the customer's own
    assert [(e["action"], e["actor_email"], e["actor_role"]) for e in reads] == [
        ("dossier.read", EMAIL_OF[Role.trainer], "trainer")
    ]
    assert reads[0]["client_address"] == "127.0.0.1" and reads[0]["at"]
    signed = (await http.get("/api/v1/operations/audit?action=sign_in", headers=admin)).json()
    assert any(
        e["action"] == "sign_in"
        and e["actor_email"] == EMAIL_OF[Role.developer]
        and e["details"] == {"method": "token"}
        for e in signed
    )
    changes = (await http.get("/api/v1/operations/audit?action=permission.", headers=admin)).json()
    assert any(
        e["action"] == "permission.product_manager.granted"
        and e["target"] == pm_id
        and e["details"] == {"software": "manao-paie"}
        for e in changes
    )

    exported = await http.get(
        f"/api/v1/operations/audit?target={dossier_id}&format=csv", headers=admin
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(row["action"], row["actor_email"]) for row in rows] == [
        ("dossier.read", EMAIL_OF[Role.trainer])
    ]
    for role in (Role.technician, Role.customer, Role.trainer):
        refused = await http.get("/api/v1/operations/audit", headers=auth(tokens[role]))
        assert refused.status_code == 403


async def test_a_read_through_the_site_names_the_visitor_and_the_header_is_not_forgeable(
    http: httpx.AsyncClient, system
) -> None:
    tokens = system.tokens
    admin, tech = auth(tokens[Role.admin]), auth(tokens[Role.technician])
    deposited = await http.post("/api/v1/requests", json=deposit_body(subject="Audit site"))
    dossier_id = deposited.json()["id"]
    # a direct caller cannot name another address
    forged = await http.get(
        f"/api/v1/dossiers/{dossier_id}", headers={**tech, "Site-Visitor": "203.0.113.9"}
    )
    assert forged.status_code in (200, 404)
    async with httpx.AsyncClient(base_url=system.base_url, timeout=20) as web:
        csrf = csrf_of((await web.get("/connexion")).text)
        await web.post(
            "/connexion",
            data={
                "csrf": csrf,
                "email": EMAIL_OF[Role.technician],
                "token": tokens[Role.technician],
            },
        )
        page = await web.get(f"/bureau/dossiers/{dossier_id}")
        assert page.status_code == 200, page.text
    reads = (await http.get(f"/api/v1/operations/audit?target={dossier_id}", headers=admin)).json()
    addresses = {e["client_address"] for e in reads if e["action"] == "dossier.read"}
    assert "127.0.0.1 (site)" in addresses  # the visitor, through the site
    assert not any("203.0.113.9" in a for a in addresses)
