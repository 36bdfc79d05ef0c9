"""« Travail bloqué » in the back office, over HTTP: administrators only, in French, with the
item's label and error, and a discard that needs the form token."""

from __future__ import annotations

import uuid
from html import unescape
from typing import Any

import httpx

from assistance import db
from assistance.directory import Role
from tests.services.site.support import EMAIL_OF, csrf_of


async def _signed_in(system: Any, role: Role) -> httpx.AsyncClient:
    web = httpx.AsyncClient(base_url=system.base_url, timeout=60, follow_redirects=False)
    token = csrf_of((await web.get("/connexion")).text)
    ok = await web.post(
        "/connexion",
        data={"csrf": token, "email": EMAIL_OF[role], "token": system.tokens[role]},
    )
    assert ok.status_code == 303, ok.text
    return web


async def test_stuck_work_page_lists_and_discards(system: Any) -> None:
    pool = await db.create_pool(system.settings.database_url, 2)
    ref = f"TRAINING:{uuid.uuid4().int % 10**9}"
    try:
        parked_id = await pool.fetchval(
            """INSERT INTO bus.parked (source, name, ref, subject, data, error, attempts,
                   notified_at)
               VALUES ('consumer', 'training-dossiers', $1, 'dossier.dossier.opened', '{}',
                       'gave up after 8 attempts: KeyError(''training'')', 8, now())
               RETURNING id""",
            ref,
        )
        technician = await _signed_in(system, Role.technician)
        try:
            assert (await technician.get("/bureau/operations")).status_code == 403
        finally:
            await technician.aclose()
        admin = await _signed_in(system, Role.admin)
        try:
            shown = await admin.get("/bureau/operations")
            assert shown.status_code == 200, shown.text
            html = unescape(shown.text)
            assert "<h1>Travail bloqué</h1>" in html
            assert "Message non traité : historique des clients pour la formation" in html
            assert "gave up after 8 attempts: KeyError('training')" in html
            assert f'action="/bureau/operations/{parked_id}/abandonner"' in html
            assert "training-dossiers" not in html  # no code names shown to people
            refused = await admin.post(f"/bureau/operations/{parked_id}/abandonner")
            assert refused.status_code == 403  # no form token
            done = await admin.post(
                f"/bureau/operations/{parked_id}/abandonner", data={"csrf": csrf_of(shown.text)}
            )
            assert done.status_code == 303
            assert done.headers["location"] == "/bureau/operations"
            after = unescape((await admin.get("/bureau/operations")).text)
            assert "Abandonné : il n'est plus dans la liste." in after
        finally:
            await admin.aclose()
        state, by = await pool.fetchrow(
            "SELECT state, acted_by FROM bus.parked WHERE id = $1", parked_id
        )
        assert state == "discarded"
        assert by
    finally:
        await pool.close()
