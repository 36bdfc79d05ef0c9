"""No code or English leftover reaches a person (issue 14): every page of every role, over
dossiers of the four kinds handed to their services, reads in French, with no internal code
(snake_case states, software codes, English state words). `what_people_read` scans, after a
dossier's whole lifecycle, every mail sent about it and every page its customer reads: each
kind's end-to-end test calls it (usage: tests/services/dossier/test_lifecycle_api.py;
advanced usage, bug, evolution: tests/services/{training,bugs,evolutions}/test_end_to_end.py)."""

from __future__ import annotations

import re
import uuid
from email.message import EmailMessage
from html import escape, unescape
from typing import Any

import httpx

from assistance import db, follow
from assistance.directory import Role
from deploy.local.stack import LocalStack
from tests.helpers import auth, eventually
from tests.services.site.support import EMAIL_OF, csrf_of, opened_dossier, site_client

SNAKE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
SOFTWARE_CODE = re.compile(r"\bmanao-(?:compta|paie)\b")
ENGLISH = re.compile(
    r"\b(recorded|reported|reviewed|handed|training|customer|waiting|pending|accepted|rejected"
    r"|shipped|merged|released|booked|held|missed|cancelled|duplicate|claimed|linked|diagnosed"
    r"|reproduced|resolved|closed|Not found|String should|There was an error)\b"
)
# not read as French: scripts, styles, form values, and the technical detail an administrator
# needs to repair stuck work, marked as such (`<code lang="en">`, under « Détail technique »)
HIDDEN = re.compile(
    r"<(script|style|select|textarea)\b.*?</\1>|<code lang=\"en\"[^>]*>.*?</code>", re.S | re.I
)
TAG = re.compile(r"<[^>]+>")
URL = re.compile(r"\bhttps?://\S+")  # an address, not words: its path may name a software
# what a calendar shows of an invitation (RFC 5545 properties, unfolded)
SHOWN_IN_CALENDARS = re.compile(r"^(SUMMARY|DESCRIPTION|LOCATION)[;:][^\n]*", re.M)


def visible_text(html: str) -> str:
    """What a reader sees: the text between tags (not attributes, scripts or option lists),
    addresses aside."""
    return URL.sub(" ", unescape(TAG.sub(" ", HIDDEN.sub(" ", html))))


def leftovers(html: str) -> list[str]:
    text = visible_text(html)
    return sorted(
        {m.group(0) for pattern in (SNAKE, SOFTWARE_CODE, ENGLISH) for m in pattern.finditer(text)}
    )


def _read_parts(message: EmailMessage) -> list[tuple[str, str]]:
    """The parts of a mail a person reads, as HTML: its subject, its text and HTML bodies."""
    parts = [("objet", f"<p>{escape(str(message['Subject']))}</p>")]
    for part in message.walk():
        if part.is_attachment() or part.get_content_maintype() != "text":
            continue
        content = part.get_content()
        if part.get_content_subtype() == "html":
            parts.append(("html", content))
        elif part.get_content_subtype() == "calendar":
            unfolded = content.replace("\r\n ", "").replace("\n ", "")
            shown = "\n".join(m[0] for m in SHOWN_IN_CALENDARS.finditer(unfolded))
            shown = shown.replace("\\n", "\n").replace("\\,", ",").replace("\\;", ";")
            parts.append(("agenda", f"<p>{escape(shown)}</p>"))
        else:
            parts.append(("texte", f"<p>{escape(content)}</p>"))
    return parts


async def what_people_read(
    system: Any, stack: LocalStack, dossier_id: str, reference: str, requester: str
) -> dict[str, list[str]]:
    """The codes or English words in what people read of one dossier: every mail sent about it
    (caught over real SMTP: to the customer, the trainer, the team), the customer's pages (the
    portal's dossier page and lists, the follow page of their personal link). Empty: French."""
    found: dict[str, list[str]] = {}
    mails = 0
    for caught in stack.mail.messages:
        message = caught.message()
        parts = _read_parts(message)
        if not any(reference in text for _, text in parts):
            continue
        mails += 1
        for name, text in parts:
            if bad := leftovers(text):
                found[f"mail {message['Subject']} → {', '.join(caught.rcpt_tos)} ({name})"] = bad
    assert mails >= 2, f"no mail about {reference} was caught"  # at least received and closed
    token = follow.sign(uuid.UUID(dossier_id), requester, system.settings.mail_signing_key)
    pages = [
        f"/espace/dossiers/{dossier_id}",
        f"/espace?q={reference}",
        f"/espace?etat=clos&q={reference}",
        f"/suivi/{token}",
    ]
    async with site_client(system, Role.customer) as web:
        for path in pages:
            r = await web.get(path)
            assert r.status_code == 200, (path, r.status_code)
            assert reference in r.text, path
            if bad := leftovers(r.text):
                found[f"page {path}"] = bad
    return found


def test_the_scanner_finds_what_it_looks_for() -> None:
    html = (
        "<p>En attente de training</p><dd>handed_over</dd><span>manao-compta</span>"
        '<a href="/x_y" title="bug_fix">Demande d\'évolution : reviewed.</a>'
        "<script>var in_progress = 1;</script>"
    )
    assert leftovers(html) == ["handed_over", "manao-compta", "reviewed", "training"]
    assert leftovers("<p>Manao Compta — Demande transmise au chef de produit.</p>") == []


async def _user_id(system: Any, role: Role) -> Any:
    pool = await db.create_pool(system.settings.database_url, 1)
    try:
        return await pool.fetchval(
            "SELECT id FROM directory.users WHERE email = $1", EMAIL_OF[role]
        )
    finally:
        await pool.close()


async def _handed_over(http: httpx.AsyncClient, system: Any, kind: str, subject: str) -> dict:
    dossier = await opened_dossier(http, system, subject=subject)
    tech = auth(system.tokens[Role.technician])
    base = f"/api/v1/dossiers/{dossier['id']}"
    assert (await http.post(f"{base}/take", headers=tech)).status_code == 200
    diagnosis = {"kind": kind, "context": "Cabinet de 40 personnes", "need": subject}
    r = await http.post(f"{base}/diagnosis", headers=tech, json={**diagnosis, "version": "5.2"})
    assert r.status_code == 200, r.text
    if kind == "bug":
        r = await http.post(f"{base}/workaround", headers=tech, json={"text": "Passer par Excel."})
        assert r.status_code == 200, r.text
    if kind == "usage":
        r = await http.post(f"{base}/responses", headers=tech, json={"text": "Menu Outils."})
        assert r.status_code in (200, 201), r.text
        r = await http.post(f"{base}/screen-share", headers=tech)  # the portal shows its link
        assert r.status_code == 200, r.text
        return dossier

    async def handed() -> dict | None:
        got = (await http.get(base, headers=tech)).json()
        return got if any(e["kind"] == "handed_over" for e in got["timeline"]) else None

    return await eventually(handed, timeout=20)


async def test_every_page_of_every_role_is_free_of_codes(
    system: Any, http: httpx.AsyncClient
) -> None:
    await http.put(
        "/api/v1/training/trainers/me",
        headers=auth(system.tokens[Role.trainer]),
        json={"softwares": ["manao-compta", "manao-paie"], "active": True},
    )
    dossiers = [
        await _handed_over(http, system, "usage", "Paramétrer les droits d'accès"),
        await _handed_over(http, system, "advanced_usage", "Former l'équipe aux clôtures"),
        await _handed_over(http, system, "bug", "Le rapprochement plante au lancement"),
        await _handed_over(http, system, "evolution", "Exporter les écritures en format Excel"),
    ]
    manager = await _user_id(system, Role.product_manager)
    assigned = await http.put(
        f"/api/v1/softwares/manao-compta/product-managers/{manager}",
        headers=auth(system.tokens[Role.admin]),
    )
    assert assigned.status_code == 200, assigned.text
    developer = auth(system.tokens[Role.developer])
    bugs = (await http.get("/api/v1/bugs", headers=developer)).json()["items"]
    product = auth(system.tokens[Role.product_manager])
    evolutions = (await http.get("/api/v1/evolutions", headers=product)).json()["items"]
    pages: dict[Role | None, list[str]] = {
        None: ["/", "/deposer", "/documentation", "/annonces", "/connexion", "/nulle-part"],
        Role.customer: ["/espace", *(f"/espace/dossiers/{d['id']}" for d in dossiers)],
        Role.technician: [
            "/bureau/file",
            *(f"/bureau/dossiers/{d['id']}" for d in dossiers),
            "/bureau/recherche?q=rapprochement",
            "/bureau/appel",
            "/bureau/tableau-de-bord",
            "/bureau/quarantaine",
            "/bureau/quarantaine?etat=liberes",
            "/bureau/quarantaine?etat=ecartes",
        ],
        Role.trainer: ["/bureau/formation"],
        Role.developer: ["/bureau/bugs", *(f"/bureau/bugs/{b['id']}" for b in bugs[:3])],
        Role.product_manager: [
            "/bureau/evolutions",
            *(f"/bureau/evolutions/{e['id']}" for e in evolutions[:3]),
            "/bureau/versions",
        ],
        Role.admin: ["/bureau/operations"],
    }
    found: dict[str, list[str]] = {}
    for role, paths in pages.items():
        async with site_client(system, role) as web:
            for path in paths:
                r = await web.get(path)
                expected = 404 if path == "/nulle-part" else 200
                assert r.status_code == expected, (role, path, r.status_code)
                assert r.headers["content-type"].startswith("text/html"), (role, path)
                if bad := leftovers(r.text):
                    found[f"{role.value if role else 'public'} {path}"] = bad
    assert found == {}


async def test_an_unknown_url_is_a_french_page_and_the_api_keeps_json(system: Any) -> None:
    async with site_client(system, None) as web:
        page = await web.get("/nulle-part")
        api = await web.get("/api/v1/nulle-part")

    assert page.status_code == 404
    assert "<h1>Page introuvable</h1>" in page.text
    assert "Cette page n'existe pas." in unescape(page.text)
    assert page.headers["x-content-type-options"] == "nosniff"
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"


async def test_every_public_page_has_its_own_title(system: Any) -> None:
    paths = ["/", "/deposer", "/documentation", "/annonces", "/connexion", "/nulle-part"]
    titles = {}
    async with site_client(system, None) as web:
        for path in paths:
            found = re.search(r"<title>(.*?)</title>", (await web.get(path)).text, re.S)
            assert found, path
            titles[path] = unescape(found.group(1)).strip()

    assert titles == {
        "/": "Centre de service Manao",
        "/deposer": "Déposer une demande · Centre de service Manao",
        "/documentation": "Documentation · Centre de service Manao",
        "/annonces": "Nouveautés · Centre de service Manao",
        "/connexion": "Se connecter · Centre de service Manao",
        "/nulle-part": "Page introuvable · Centre de service Manao",
    }


async def test_a_refused_form_names_its_field_in_words(
    system: Any, http: httpx.AsyncClient
) -> None:
    dossier = await opened_dossier(http, system, subject="Clôture sans résolution")
    tech = auth(system.tokens[Role.technician])
    assert (await http.post(f"/api/v1/dossiers/{dossier['id']}/take", headers=tech)).is_success
    path = f"/bureau/dossiers/{dossier['id']}"
    async with site_client(system, Role.technician) as web:
        csrf = csrf_of((await web.get(path)).text)
        r = await web.post(f"{path}/clore", data={"csrf": csrf, "resolution": "   "})
        assert r.status_code == 303
        shown = await web.get(path)

    flashes = re.findall(r'<div class="flash[^"]*"[^>]*>(.*?)</div>', unescape(shown.text), re.S)
    assert flashes == ["Résolution : Ce champ ne peut pas être vide."]
    assert leftovers(shown.text) == []
