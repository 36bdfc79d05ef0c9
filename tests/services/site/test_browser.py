"""The site in a real browser (Debian's Chromium driven by Playwright), over the whole system:
a customer deposits and sees the committed time; a technician takes, diagnoses, responds and
closes; the customer sees the answer and rates it; a script injected anywhere never runs.
The screenshots of the main pages come from here (`make screenshots` refreshes the README's)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from assistance.directory import Role
from services.site import i18n
from tests.helpers import auth, eventually
from tests.services.site.support import opened_dossier, shoot, signed_in

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def test_browser_customer_deposits_and_sees_the_committed_time(
    browser: Any, system: Any, http: httpx.AsyncClient, screenshots: Path
) -> None:
    visitor = await signed_in(browser, system, None)
    page = visitor.page
    await page.goto("/")
    await shoot(page, screenshots, "accueil")
    await page.get_by_role("link", name="Déposer une demande").first.click()
    await page.get_by_label("Votre nom").fill("Claire Martin")
    await page.get_by_label("Votre adresse e-mail").fill("claire.martin@dupont-sa.fr")
    await page.get_by_label("Logiciel").select_option("manao-compta")
    await page.get_by_label("Objet").fill("Balance âgée fausse après la clôture")
    await page.get_by_label("Votre demande").fill(
        "Depuis la clôture de novembre, la balance âgée affiche des soldes à zéro.\n"
        "Merci de votre aide."
    )
    await page.get_by_label("Pièces jointes (facultatif)").set_input_files(
        [{"name": "balance.csv", "mimeType": "text/csv", "buffer": b"compte;solde\n411;0\n"}]
    )
    await shoot(page, screenshots, "depot")
    await page.get_by_role("button", name="Envoyer ma demande").click()
    await page.get_by_role("heading", name="Votre demande est enregistrée").wait_for()
    reference = await page.locator("[data-reference]").inner_text()
    assert re.fullmatch(r"D-\d{4}-\d{6}", reference)
    listed = await http.get(
        "/api/v1/dossiers", params={"q": reference}, headers=auth(system.tokens[Role.technician])
    )
    (dossier,) = listed.json()["items"]
    promise = f"réponse garantie avant {i18n.when(dossier['first_response_due'], 'fr')}"
    assert await page.locator("[data-due]").inner_text() == promise
    assert "1 pièce jointe enregistrée." in await page.content()
    await shoot(page, screenshots, "depot-confirmation")

    # signed in, the customer finds it among the organisation's dossiers, with the same time
    customer = await signed_in(browser, system, Role.customer)
    await customer.page.goto("/espace")
    row = customer.page.locator(".dossier-row", has_text=reference)
    assert promise in await row.inner_text()
    await shoot(customer.page, screenshots, "espace-client")
    await visitor.page.context.close()
    await customer.page.context.close()


async def test_browser_technician_takes_diagnoses_responds_and_closes(
    browser: Any, system: Any, http: httpx.AsyncClient, screenshots: Path
) -> None:
    dossier = await opened_dossier(
        http, system, subject="Droits d'export FEC", description="Je ne vois pas l'export FEC."
    )
    tech = await signed_in(browser, system, Role.technician)
    page = tech.page
    await page.goto("/bureau/file")
    row = page.locator("tr", has_text=dossier["reference"])
    assert "premier arrivé, premier servi" in await row.inner_text() or "week-end" in (
        await row.inner_text()
    )
    await shoot(page, screenshots, "file")
    await row.get_by_role("button", name="Prendre").click()
    await page.get_by_text("Vous suivez désormais ce dossier.").wait_for()
    assert page.url.endswith(f"/bureau/dossiers/{dossier['id']}")

    await page.get_by_label("Question d'utilisation").check()
    await page.get_by_label("Le contexte de travail du client").fill(
        "Cabinet comptable, clôture mensuelle"
    )
    await page.get_by_label("Le besoin technique").fill("Donner le droit d'export FEC")
    await page.get_by_role("button", name="Enregistrer le diagnostic").click()
    await page.get_by_text("Diagnostic enregistré.").wait_for()

    await page.get_by_label("Réponse (envoyée par mail)").fill(
        "Menu Paramètres > Utilisateurs > Droits : cochez « Exporter le FEC »."
    )
    await (
        page.locator("#respond")
        .get_by_label("Pièces jointes (facultatif)")
        .set_input_files(
            [{"name": "droits.txt", "mimeType": "text/plain", "buffer": b"Exporter le FEC"}]
        )
    )
    await page.get_by_role("button", name="Envoyer la réponse").click()
    await page.get_by_text("Réponse envoyée au client.").wait_for()
    await shoot(page, screenshots, "dossier-technicien")

    await page.locator("#close summary").click()
    await page.get_by_label("Résolution (envoyée au client)").fill(
        "Droit d'export FEC accordé ; export vérifié avec la cliente."
    )
    await page.get_by_role("button", name="Clore", exact=True).click()
    await page.get_by_text("Dossier clos.").wait_for()
    assert await page.locator(".page-head .badge").inner_text() == "Clos"
    timeline = await page.locator(".timeline").inner_text()
    for entry in ("Pris en charge", "Diagnostic", "Réponse", "Dossier clos"):
        assert entry in timeline, timeline
    got = await http.get(
        f"/api/v1/dossiers/{dossier['id']}", headers=auth(system.tokens[Role.technician])
    )
    assert got.json()["status"] == "closed"
    assert got.json()["kind"] == "usage"
    assert got.json()["first_responded_at"] is not None
    await page.context.close()


async def _treated_by_api(http: httpx.AsyncClient, system: Any, **overrides: Any) -> dict:
    dossier = await opened_dossier(http, system, **overrides)
    tech = auth(system.tokens[Role.technician])
    base = f"/api/v1/dossiers/{dossier['id']}"
    steps = [
        ("take", {}),
        ("diagnosis", {"kind": "usage", "context": "Paie mensuelle", "need": "Bulletin"}),
        ("responses", {"text": "Le bulletin se régénère par Paie > Bulletins > Recalculer."}),
        ("close", {"resolution": "Bulletin recalculé avec la cliente."}),
    ]
    for path, body in steps:
        r = await http.post(f"{base}/{path}", headers=tech, json=body)
        assert r.status_code == 200, (path, r.text)
    return dossier


async def test_browser_customer_sees_the_answer_and_rates_it(
    browser: Any, system: Any, http: httpx.AsyncClient, screenshots: Path
) -> None:
    dossier = await _treated_by_api(http, system, subject="Bulletin de paie faux")
    customer = await signed_in(browser, system, Role.customer)
    page = customer.page
    await page.goto("/espace")
    await page.get_by_role("link", name=dossier["reference"]).click()
    timeline = await page.locator(".timeline").inner_text()
    assert "Le bulletin se régénère par Paie > Bulletins > Recalculer." in timeline
    assert "Diagnostic (interne)" not in timeline  # internal notes stay internal
    assert "Bulletin recalculé avec la cliente." in await page.locator("#rating").inner_text()
    await page.locator("label[for=score-4]").click()
    await page.get_by_label("Commentaire (facultatif)").fill("Rapide et clair, merci !")
    await page.get_by_role("button", name="Envoyer ma note").click()
    await page.get_by_text("Merci pour votre note.").wait_for()
    assert "Votre note : 4 / 5" in await page.locator("#rating").inner_text()
    await shoot(page, screenshots, "dossier-client")
    # the same page on a phone
    phone = await signed_in(browser, system, Role.customer, **PHONE)
    await phone.page.goto(f"/espace/dossiers/{dossier['id']}")
    width = await phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width  # nothing wider than the screen
    await shoot(phone.page, screenshots, "telephone-dossier-client")
    await phone.page.context.close()

    # the rating counts on the dashboard
    tech = await signed_in(browser, system, Role.technician)
    await tech.page.goto("/bureau/tableau-de-bord")
    kpis = await tech.page.locator(".kpis").inner_text()
    assert re.search(r"\d,\d\nnote moyenne \(\d+ notes?\)", kpis), kpis
    await shoot(tech.page, screenshots, "tableau-de-bord")
    await tech.page.goto(f"/bureau/recherche?q={dossier['reference']}")
    assert dossier["reference"] in await tech.page.locator("table").inner_text()
    await shoot(tech.page, screenshots, "recherche")
    await tech.page.context.close()
    await page.context.close()


XSS = {
    "name": 'Mallory <img src=x onerror="window.__xss=1;alert(1)">',
    "subject": "<script>window.__xss=2;alert(2)</script>Facture",
    "description": '"><svg onload="window.__xss=3;alert(3)"></svg> & <b>gras</b>',
    "file": '"><img src=x onerror="window.__xss=4;alert(4)">.txt',
    "reply": '<iframe src="javascript:alert(5)"></iframe><a href="javascript:alert(6)">x</a>',
}


async def _nothing_injected(watched: Any) -> None:
    await watched.no_script_ran()
    page = watched.page
    injected = await page.evaluate(
        """() => document.querySelectorAll(
            'img[src="x"], svg[onload], iframe, main script, a[href^="javascript"]').length"""
    )
    assert injected == 0


async def test_browser_injected_scripts_never_run(
    browser: Any, system: Any, http: httpx.AsyncClient
) -> None:
    visitor = await signed_in(browser, system, None)
    page = visitor.page
    await page.goto("/deposer")
    await page.get_by_label("Votre nom").fill(XSS["name"])
    await page.get_by_label("Votre adresse e-mail").fill("claire.martin@dupont-sa.fr")
    await page.get_by_label("Logiciel").select_option("manao-compta")
    await page.get_by_label("Objet").fill(XSS["subject"])
    await page.get_by_label("Votre demande").fill(XSS["description"])
    await page.get_by_label("Pièces jointes (facultatif)").set_input_files(
        [{"name": XSS["file"], "mimeType": "text/html", "buffer": b"<script>alert(7)</script>"}]
    )
    await page.get_by_role("button", name="Envoyer ma demande").click()
    reference = await page.locator("[data-reference]").inner_text()
    await _nothing_injected(visitor)

    async def listed() -> list[dict[str, Any]]:
        # the read model is projected from events: the deposit shows once they are applied
        technician = auth(system.tokens[Role.technician])
        got = await http.get("/api/v1/dossiers", params={"q": reference}, headers=technician)
        return got.json()["items"]  # type: ignore[no-any-return]

    (summary,) = await eventually(listed)

    async def opened() -> bool:
        got = await http.get(
            f"/api/v1/dossiers/{summary['id']}", headers=auth(system.tokens[Role.technician])
        )
        return any(e["kind"] == "opened" for e in got.json()["timeline"])

    await eventually(opened, timeout=15)

    customer = await signed_in(browser, system, Role.customer)
    await customer.page.goto(f"/espace?q={reference}")
    assert XSS["subject"] in await customer.page.locator(".dossiers").inner_text()
    await _nothing_injected(customer)
    await customer.page.goto(f"/espace/dossiers/{summary['id']}")
    await customer.page.get_by_label("Votre message").fill(XSS["reply"])
    await customer.page.get_by_role("button", name="Envoyer", exact=True).click()
    await customer.page.get_by_text("Votre message est transmis à votre technicien.").wait_for()
    shown = await customer.page.locator("main").inner_text()
    file_name = XSS["file"].replace('"', "%22")  # as browsers send it (HTML's form encoding)
    for text in (XSS["subject"], XSS["name"], file_name, XSS["reply"]):
        assert text in shown, text
    await _nothing_injected(customer)
    link = customer.page.get_by_role("link", name=file_name)
    download = await customer.page.request.get(await link.get_attribute("href"))
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["content-type"] == "application/octet-stream"

    tech = await signed_in(browser, system, Role.technician)
    for path in (
        "/bureau/file",
        f"/bureau/dossiers/{summary['id']}",
        f"/bureau/recherche?q={reference}",
    ):
        await tech.page.goto(path)
        assert XSS["subject"] in await tech.page.locator("main").inner_text(), path
        await _nothing_injected(tech)
    for watched in (visitor, customer, tech):
        await watched.page.context.close()


async def test_the_api_docs_render_with_no_network(browser, system) -> None:
    """Issue 13: /docs from local assets only, under its CSP; every outside request fails."""
    context = await browser.new_context(base_url=system.base_url)
    try:
        page = await context.new_page()
        outside: list[str] = []
        violations: list[str] = []

        async def only_local(route) -> None:  # type: ignore[no-untyped-def]
            if route.request.url.startswith(system.base_url):
                await route.continue_()
            else:
                outside.append(route.request.url)
                await route.abort()

        await page.route("**/*", only_local)
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        await page.goto("/docs")
        title = page.locator(".swagger-ui .info .title")
        await title.wait_for(timeout=30_000)
        assert "Centre de service Manao" in await title.inner_text()
        assert await page.locator(".opblock").count() > 20  # the operations are listed
        assert outside == [] and violations == []
    finally:
        await context.close()
