"""« Travail bloqué » in the back office, over HTTP: administrators only, in French, with the
item's label and error, and a discard that needs the form token; a stopped dossier follow-up
restarted and marked as handled from the page."""

from __future__ import annotations

import uuid
from html import unescape
from typing import Any

import httpx
from temporalio.client import WorkflowExecutionStatus

from assistance import db
from assistance.directory import Role
from tests.helpers import eventually
from tests.services.site.support import EMAIL_OF, csrf_of, opened_dossier
from tests.services.site.test_no_codes import leftovers, visible_text


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


async def test_a_stopped_follow_up_is_restarted_then_marked_as_handled_from_the_page(
    http: httpx.AsyncClient, system: Any
) -> None:
    """The follow-up of a dossier, terminated by hand, shows « Relancer » and « Marquer comme
    traité »; each needs the form token and answers with a confirmation in French."""
    temporal = system.app.state.runtime.temporal
    dossier = await opened_dossier(http, system, subject="Suivi arrêté, page")
    handle = temporal.get_workflow_handle(dossier["id"])
    await handle.terminate(reason="arrêt pour le test")
    restart = f'action="/bureau/operations/suivis/{dossier["id"]}/relancer"'
    handled = f'action="/bureau/operations/suivis/{dossier["id"]}/traite"'
    admin = await _signed_in(system, Role.admin)
    try:

        async def listed(form: str = restart) -> str | None:
            html = unescape((await admin.get("/bureau/operations")).text)
            return html if form in html else None

        html = await eventually(listed, timeout=30)
        assert handled in html
        assert ">Relancer</button>" in html
        assert ">Marquer comme traité</button>" in html
        assert "Suivi de dossier arrêté" in html
        assert leftovers(html) == []
        assert dossier["id"] not in visible_text(html)  # ids stay in links and forms

        refused = await admin.post(f"/bureau/operations/suivis/{dossier['id']}/relancer")
        assert refused.status_code == 403  # no form token
        done = await admin.post(
            f"/bureau/operations/suivis/{dossier['id']}/relancer", data={"csrf": csrf_of(html)}
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/bureau/operations"
        after = unescape((await admin.get("/bureau/operations")).text)
        assert "Relancé : le suivi reprend là où il s'était arrêté." in after
        assert restart not in after
        running = await handle.describe()
        assert running.status == WorkflowExecutionStatus.RUNNING

        # again, now that it runs: the refusal in French, on the page
        again = await admin.post(
            f"/bureau/operations/suivis/{dossier['id']}/relancer", data={"csrf": csrf_of(after)}
        )
        assert again.status_code == 303
        refusal = unescape((await admin.get("/bureau/operations")).text)
        assert "Ce suivi n'est pas arrêté : rien à relancer." in refusal

        # stopped once more (its new run), then marked as handled
        await handle.terminate(reason="arrêt pour le test, encore")
        html = await eventually(listed, timeout=30)
        done = await admin.post(
            f"/bureau/operations/suivis/{dossier['id']}/traite", data={"csrf": csrf_of(html)}
        )
        assert done.status_code == 303
        after = unescape((await admin.get("/bureau/operations")).text)
        assert "Marqué comme traité : il n'est plus dans la liste." in after
        assert handled not in after
        unknown = await admin.post(
            f"/bureau/operations/suivis/{dossier['id']}/effacer", data={"csrf": csrf_of(after)}
        )
        assert unknown.status_code == 404
    finally:
        await admin.aclose()
