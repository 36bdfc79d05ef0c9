"""The site on a phone (issue 14), in Debian's Chromium at 360 px: no page scrolls sideways,
the header stays compact, and on a dossier page the reply box comes before the history."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from assistance import db
from assistance.directory import Role
from tests.helpers import auth, eventually
from tests.services.intake.mail_helpers import build_mail, send
from tests.services.site.support import EMAIL_OF, opened_dossier, signed_in

PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}
HEADER_MAX_PX = 130


async def _measure(page: Any, path: str) -> dict[str, Any]:
    await page.goto(path)
    return await page.evaluate(  # type: ignore[no-any-return]
        """() => {
            const top = (s) => { const e = document.querySelector(s);
                                 return e ? e.getBoundingClientRect().top : -1; };
            return {
                width: document.documentElement.scrollWidth,
                wider: [...document.querySelectorAll('body *')]
                    .filter((e) => e.getBoundingClientRect().right > 361)
                    .slice(0, 5)
                    .map((e) => `${e.tagName}.${e.className} ${e.getBoundingClientRect().right}`),
                header: document.querySelector('header').getBoundingClientRect().height,
                reply: top('#reply, #respond'),
                history: top('#history-title'),
            };
        }"""
    )


async def test_no_page_scrolls_sideways_and_the_reply_comes_first(
    browser: Any, system: Any, http: httpx.AsyncClient
) -> None:
    dossier = await opened_dossier(
        http, system, subject="Un sujet assez long pour occuper toute la largeur d'un téléphone"
    )
    tech = auth(system.tokens[Role.technician])
    assert (await http.post(f"/api/v1/dossiers/{dossier['id']}/take", headers=tech)).is_success
    # the invitation's box on the customer's page, the versions of a software managed
    assert (
        await http.post(f"/api/v1/dossiers/{dossier['id']}/screen-share", headers=tech)
    ).is_success
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
    sender = "claire.une-adresse-plutot-longue@dupont-sa.fr"
    subject = f"Un objet de courriel assez long pour un téléphone {uuid.uuid4().hex[:6]}"
    raw = build_mail(sender, subject, headers={"Precedence": "bulk"})
    await send(system.settings.mail_listen_port, raw, sender)

    async def quarantined() -> str | None:
        found = await http.get("/api/v1/mail/quarantine", headers=tech)
        return next((i["mail_id"] for i in found.json() if i["subject"] == subject), None)

    mail_id = await eventually(quarantined, timeout=20)
    pages = {
        None: ["/", "/deposer", "/documentation", "/annonces", "/connexion"],
        Role.customer: ["/espace", "/espace?etat=en-cours", f"/espace/dossiers/{dossier['id']}"],
        Role.technician: [
            "/bureau/file",
            f"/bureau/dossiers/{dossier['id']}",
            "/bureau/recherche?q=largeur",
            "/bureau/appel",
            "/bureau/tableau-de-bord",
            "/bureau/quarantaine",
            f"/bureau/quarantaine/{mail_id}",
        ],
        Role.trainer: ["/bureau/formation"],
        Role.product_manager: ["/bureau/versions"],
    }
    measured: dict[str, dict[str, Any]] = {}
    for role, paths in pages.items():
        watched = await signed_in(browser, system, role, **PHONE)
        try:
            for path in paths:
                measured[path] = await _measure(watched.page, path)
        finally:
            await watched.page.context.close()

    too_wide = {p: (m["width"], m["wider"]) for p, m in measured.items() if m["width"] > 360}
    assert too_wide == {}
    tall = {p: m["header"] for p, m in measured.items() if m["header"] > HEADER_MAX_PX}
    assert tall == {}
    for path in (f"/espace/dossiers/{dossier['id']}", f"/bureau/dossiers/{dossier['id']}"):
        m = measured[path]
        assert 0 <= m["reply"] < m["history"], (path, m)
