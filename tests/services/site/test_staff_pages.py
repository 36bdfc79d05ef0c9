"""Pages for trainers, developers and product managers, over their services' APIs (R7–R9):
each sees what their service holds and acts on it through the site."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import unescape

import httpx

from assistance import db
from assistance.directory import Role
from tests.helpers import auth, eventually
from tests.services.site.support import EMAIL_OF, csrf_of, opened_dossier


@asynccontextmanager
async def _signed_in(system, role: Role) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system.base_url, timeout=60) as web:
        token = csrf_of((await web.get("/connexion")).text)
        r = await web.post(
            "/connexion",
            data={"csrf": token, "email": EMAIL_OF[role], "token": system.tokens[role]},
        )
        assert r.status_code == 303, r.text
        yield web


async def _classified(http: httpx.AsyncClient, system, kind: str, **overrides) -> dict:
    dossier = await opened_dossier(http, system, **overrides)
    tech = auth(system.tokens[Role.technician])
    base = f"/api/v1/dossiers/{dossier['id']}"
    assert (await http.post(f"{base}/take", headers=tech)).status_code == 200
    diagnosis = {"kind": kind, "context": "Cabinet de 40 personnes", "need": overrides["subject"]}
    r = await http.post(f"{base}/diagnosis", headers=tech, json={**diagnosis, "version": "5.2"})
    assert r.status_code == 200, r.text
    if kind == "bug":
        r = await http.post(f"{base}/workaround", headers=tech, json={"text": "Export CSV."})
        assert r.status_code == 200, r.text
    return dossier


async def test_developer_sees_the_bug_board_and_signals_a_fix(
    system, http: httpx.AsyncClient
) -> None:
    subject = "Le lettrage plante (tableau des bugs)"
    await _classified(http, system, "bug", subject=subject)
    staff = auth(system.tokens[Role.developer])

    async def bug() -> dict | None:
        found = await http.get("/api/v1/bugs", params={"q": "lettrage plante"}, headers=staff)
        items = [b for b in found.json()["items"] if b["title"] == subject]
        return items[0] if items else None

    found = await eventually(bug, timeout=20)
    async with _signed_in(system, Role.developer) as web:
        board = unescape((await web.get("/bureau/bugs")).text)
        assert subject in board and "Signalé, à reproduire" in board
        page = await web.get(f"/bureau/bugs/{found['id']}")
        assert "Export CSV." in page.text  # the workaround given to the customer
        for action, form in (
            ("prendre", {}),
            ("reproduit", {"steps": "Lettrer 60 000 lignes", "environment": "5.2, PostgreSQL"}),
            ("diagnostic", {"diagnosis": "Requête de lettrage sans pagination."}),
            ("correction", {"version": "5.2.1", "change_reference": "MR-42", "notes": ""}),
        ):
            r = await web.post(
                f"/bureau/bugs/{found['id']}/{action}", data={"csrf": csrf_of(page.text), **form}
            )
            assert r.status_code == 303
            page = await web.get(f"/bureau/bugs/{found['id']}")
            assert 'class="flash success"' in page.text, page.text
        assert "Correction terminée" in unescape(page.text)
        assert "MR-42" in page.text
        # a developer is not let into the technicians' queue
        assert (await web.get("/bureau/file")).status_code == 403


async def test_product_manager_decides_on_an_evolution(system, http: httpx.AsyncClient) -> None:
    pool = await db.create_pool(system.settings.database_url, 1)
    try:
        manager = await pool.fetchval(
            "SELECT id FROM directory.users WHERE email = $1", EMAIL_OF[Role.product_manager]
        )
    finally:
        await pool.close()
    assigned = await http.put(
        f"/api/v1/softwares/manao-compta/product-managers/{manager}",
        headers=auth(system.tokens[Role.admin]),
    )
    assert assigned.status_code == 200, assigned.text
    subject = "Exporter le FEC par établissement (revue)"
    await _classified(http, system, "evolution", subject=subject)
    staff = auth(system.tokens[Role.product_manager])

    async def recorded() -> dict | None:
        found = await http.get("/api/v1/evolutions", params={"status": "open"}, headers=staff)
        items = [e for e in found.json()["items"] if subject in e["title"]]
        return items[0] if items else None

    evolution = await eventually(recorded, timeout=20)
    async with _signed_in(system, Role.product_manager) as web:
        backlog = unescape((await web.get("/bureau/evolutions")).text)
        assert subject in backlog
        page = await web.get(f"/bureau/evolutions/{evolution['id']}")
        assert "Enregistrer la décision" in unescape(page.text)
        r = await web.post(
            f"/bureau/evolutions/{evolution['id']}/decision",
            data={
                "csrf": csrf_of(page.text),
                "decision": "accepted",
                "reason": "Demandé par plusieurs cabinets.",
                "specification": "# Export FEC par établissement\n\n- un fichier par SIRET",
            },
        )
        assert r.status_code == 303
        page = unescape((await web.get(f"/bureau/evolutions/{evolution['id']}")).text)
    assert "Décision enregistrée" in page
    assert "<h1>Export FEC par établissement</h1>" in page  # the specification, rendered
    assert re.search(r'class="badge">Acceptées?<', page)


async def test_trainer_sees_the_appointment_and_its_brief(system, http: httpx.AsyncClient) -> None:
    profile = await http.put(
        "/api/v1/training/trainers/me",
        headers=auth(system.tokens[Role.trainer]),
        json={"softwares": ["manao-compta", "manao-paie"], "active": True},
    )
    assert profile.status_code == 200, profile.text
    subject = "Former l'équipe au rapprochement bancaire"
    dossier = await _classified(http, system, "advanced_usage", subject=subject)
    staff = auth(system.tokens[Role.trainer])

    async def booked() -> dict | None:
        found = await http.get(
            "/api/v1/training/appointments", params={"dossier": dossier["id"]}, headers=staff
        )
        return found.json()["items"][0] if found.json()["items"] else None

    await eventually(booked, timeout=20)
    async with _signed_in(system, Role.trainer) as web:
        page = unescape((await web.get("/bureau/formation")).text)
    assert dossier["reference"] in page
    assert "Fiche pour le formateur" in page
    assert "Cabinet de 40 personnes" in page  # the client's work context, in the brief
