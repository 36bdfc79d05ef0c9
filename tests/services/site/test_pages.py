"""The site over HTTP, without a browser: public pages, security headers, the session cookie,
form tokens, the deposit, sign-in, downloads."""

from __future__ import annotations

import re
from datetime import datetime
from html import unescape

import httpx

from assistance import db
from assistance.directory import Role
from services.site import i18n
from tests.helpers import auth, eventually
from tests.services.site.support import EMAIL_OF, csrf_of, opened_dossier


async def _client(system) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.base_url, timeout=60, follow_redirects=False)


async def test_home_shows_opening_hours_and_the_four_engagements(system) -> None:
    async with await _client(system) as web:
        r = await web.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = unescape(r.text)
    assert '<html lang="fr">' in html
    for text in (
        "Du lundi au vendredi",
        "09:00–12:00",
        "13:00–18:00",
        "Le centre de service répond à toutes les demandes sous 4 heures.",
        "Le centre de service va jusqu'au bout de chaque dossier.",
        "Les évolutions logicielles sont annoncées sur le site de l'assistance.",
        "Les formations sont personnalisées pour chaque client.",
        "traitées en priorité le lundi matin",
    ):
        assert text in html, text


async def test_security_headers_and_session_cookie(system) -> None:
    async with await _client(system) as web:
        r = await web.get("/deposer")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("manao_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # served over plain http here; Secure under https
    # no inline script anywhere: only the one static file
    assert re.findall(r"<script[^>]*>", r.text) == ['<script src="/static/site/site.js" defer>']


async def test_a_form_without_its_token_is_refused(system, http: httpx.AsyncClient) -> None:
    subject = "Sans jeton de formulaire"
    form = {
        "name": "Claire Martin",
        "email": "claire.martin@dupont-sa.fr",
        "software": "manao-compta",
        "subject": subject,
        "description": "x",
    }
    async with await _client(system) as web:
        await web.get("/deposer")  # a session, but the form token is not sent back
        refused = await web.post("/deposer", data=form)
        assert refused.status_code == 403
        assert "Ce formulaire a expiré" in refused.text
        wrong = await web.post("/deposer", data={**form, "csrf": "forged"})
        assert wrong.status_code == 403
    found = await http.get(
        "/api/v1/dossiers", params={"q": subject}, headers=auth(system.tokens[Role.technician])
    )
    assert found.json()["total"] == 0


async def test_deposit_form_answers_with_the_reference_and_the_committed_time(
    system, http: httpx.AsyncClient
) -> None:
    async with await _client(system) as web:
        token = csrf_of((await web.get("/deposer")).text)
        incomplete = await web.post(
            "/deposer", data={"csrf": token, "name": "Claire", "email": "pas-une-adresse"}
        )
        assert incomplete.status_code == 422
        assert "Cette adresse e-mail ne semble pas valide." in incomplete.text
        assert "Indiquez un objet." in incomplete.text
        assert 'aria-invalid="true"' in incomplete.text
        form = {
            "csrf": token,
            "key": "site-test-key-0000000001",
            "name": "Claire Martin",
            "email": "claire.martin@dupont-sa.fr",
            "software": "manao-compta",
            "subject": "Déposée par le formulaire",
            "description": "Le lettrage automatique ne propose plus rien.",
        }
        done = await web.post("/deposer", data=form)
        assert done.status_code == 200, done.text
        again = await web.post("/deposer", data=form)  # sent twice: one request
    reference = re.search(r"data-reference>(D-\d{4}-\d{6})<", done.text).group(1)
    assert re.search(r"data-reference>(D-\d{4}-\d{6})<", again.text).group(1) == reference

    async def projected() -> list | None:
        listed = await http.get(
            "/api/v1/dossiers",
            params={"q": reference},
            headers=auth(system.tokens[Role.technician]),
        )
        return listed.json()["items"] or None

    (dossier,) = await eventually(projected)  # the read model follows the deposit
    due = i18n.when(dossier["first_response_due"], "fr")
    assert f"réponse garantie avant {due}" in done.text
    assert re.fullmatch(r"\w+ \d{1,2} \w+( \d{4})? à \d\d:\d\d", due), due


async def test_when_reads_like_the_commitment() -> None:
    due = datetime.fromisoformat("2026-11-30T14:00:00+01:00")
    now = datetime.fromisoformat("2026-11-29T11:00:00+01:00")
    assert i18n.when(due, "fr", now=now) == "lundi 30 novembre à 14:00"
    assert i18n.when(due, "en", now=now) == "Monday 30 November at 14:00"
    assert i18n.when(due, "fr", now=datetime.fromisoformat("2027-01-04T09:00:00+01:00")) == (
        "lundi 30 novembre 2026 à 14:00"
    )
    summer = datetime.fromisoformat("2026-07-01T07:30:00+00:00")  # 09:30 in Paris (UTC+2)
    assert i18n.stamp(summer, "fr") == "01/07/2026 09:30"
    assert i18n.duration(125, "fr") == "2 h 05" and i18n.duration(-45, "fr") == "45 min"


async def test_docs_and_announcements_say_when_nothing_is_published(system) -> None:
    """The API answers 404 (nothing there, or the service not deployed): a clear message."""
    async with await _client(system) as web:
        docs = await web.get("/documentation/logiciel-inconnu")
        page = await web.get("/documentation/manao-paie/9.9/nulle-part")
        news = await web.get("/annonces", params={"logiciel": "manao-paie"})
    assert docs.status_code == 200 and "Rien n'est encore publié ici." in unescape(docs.text)
    assert page.status_code == 200 and "Rien n'est encore publié ici." in unescape(page.text)
    assert news.status_code == 200
    assert 'href="/feeds/manao-paie.atom"' in news.text
    assert 'type="application/atom+xml"' in news.text


async def test_english_is_the_second_language(system) -> None:
    async with await _client(system) as web:
        switched = await web.get("/langue/en", params={"suite": "/deposer"})
        assert switched.status_code == 303 and switched.headers["location"] == "/deposer"
        english = await web.get("/deposer")
        assert '<html lang="en">' in english.text and "Deposit a request" in english.text
        elsewhere = await web.get("/langue/fr", params={"suite": "https://ailleurs.example/"})
        assert elsewhere.headers["location"] == "/"  # never sent to another site
        assert "Déposer une demande" in (await web.get("/deposer")).text


async def test_sign_in_checks_email_and_token(system) -> None:
    async with await _client(system) as web:
        gated = await web.get("/espace")
        assert gated.status_code == 303
        assert gated.headers["location"] == "/connexion?suite=/espace"
        token = csrf_of((await web.get("/connexion")).text)
        wrong = await web.post(
            "/connexion",
            data={"csrf": token, "email": EMAIL_OF[Role.technician], "token": "mna_faux"},
        )
        assert wrong.status_code == 400 and "Adresse e-mail ou jeton inconnu." in wrong.text
        other = await web.post(  # a real token, but someone else's
            "/connexion",
            data={
                "csrf": token,
                "email": EMAIL_OF[Role.technician],
                "token": system.tokens[Role.customer],
            },
        )
        assert other.status_code == 400
        ok = await web.post(
            "/connexion",
            data={
                "csrf": token,
                "email": EMAIL_OF[Role.customer].upper(),
                "token": system.tokens[Role.customer],
                "next": "/espace",
            },
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/espace"
        mine = await web.get("/espace")
        assert mine.status_code == 200 and "Claire Martin" in mine.text
        # a customer is not let into the back office
        assert (await web.get("/bureau/file")).status_code == 403


async def test_attachments_are_downloaded_never_rendered(system, http: httpx.AsyncClient) -> None:
    dossier = await opened_dossier(http, system, subject="Pièce jointe HTML")
    async with await _client(system) as web:
        token = csrf_of((await web.get("/connexion")).text)
        await web.post(
            "/connexion",
            data={
                "csrf": token,
                "email": EMAIL_OF[Role.customer],
                "token": system.tokens[Role.customer],
            },
        )
        page = await web.get(f"/espace/dossiers/{dossier['id']}")
        sent = await web.post(
            f"/espace/dossiers/{dossier['id']}/repondre",
            data={"csrf": csrf_of(page.text), "text": "Voici la capture."},
            files={"files": ("capture écran.html", b"<script>alert(1)</script>", "text/html")},
        )
        assert sent.status_code == 303
        page = await web.get(f"/espace/dossiers/{dossier['id']}")
        link = re.search(
            r'href="(/pieces-jointes/[0-9a-f-]+)" download>capture écran.html<', page.text
        )
        assert link, page.text
        got = await web.get(link.group(1))
    assert got.status_code == 200
    assert got.content == b"<script>alert(1)</script>"
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"capture _cran.html\"; filename*=UTF-8''capture%20%C3%A9cran.html"
    )
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in got.headers["content-security-policy"]
    # nobody else may fetch it
    async with await _client(system) as stranger:
        assert (await stranger.get(link.group(1))).status_code == 303  # to sign in


async def test_published_docs_and_announcements_are_shown(system, http: httpx.AsyncClient) -> None:
    """R11, R12: once the evolutions service publishes a version, the site shows its pages
    (sanitised again before they are shown) and the week's announcement."""
    pool = await db.create_pool(system.settings.database_url, 1)
    try:
        manager = await pool.fetchval(
            "SELECT id FROM directory.users WHERE email = $1", EMAIL_OF[Role.product_manager]
        )
    finally:
        await pool.close()
    assigned = await http.put(
        f"/api/v1/softwares/manao-paie/product-managers/{manager}",
        headers=auth(system.tokens[Role.admin]),
    )
    assert assigned.status_code == 200, assigned.text
    release = {
        "version": "3.2-site",
        "notes": "Bulletins <b>simplifiés</b>.",
        "documentation": [
            {
                "slug": "bulletins",
                "title": "Les bulletins",
                "markdown": "Menu **Paie > Bulletins**.\n\n<script>alert(1)</script>\n",
            }
        ],
    }
    declared = await http.post(
        "/api/v1/softwares/manao-paie/releases",
        json=release,
        headers=auth(system.tokens[Role.product_manager]),
    )
    assert declared.status_code in (200, 201), declared.text
    async with await _client(system) as web:
        index = await web.get("/documentation/manao-paie")
        doc = await web.get("/documentation/manao-paie/latest/bulletins")
        news = await web.get("/annonces", params={"logiciel": "manao-paie"})
    assert "Version 3.2-site" in index.text
    assert 'href="/documentation/manao-paie/3.2-site/bulletins">Les bulletins</a>' in index.text
    assert doc.status_code == 200
    assert "<h1>Les bulletins</h1>" in doc.text
    assert "<strong>Paie &gt; Bulletins</strong>" in doc.text
    assert "<script>alert" not in doc.text
    assert "Bulletins &lt;b&gt;simplifiés&lt;/b&gt;." in news.text
    assert "Version 3.2-site" in news.text


async def test_the_site_works_while_temporal_and_nats_are_down(system, stack) -> None:
    """R13: reading and depositing never depend on the centre's back end being up: the
    pages need PostgreSQL only, and intake answers once the request is committed."""
    await stack.stop_temporal()
    await stack.stop_nats()
    try:
        async with await _client(system) as web:
            assert (await web.get("/")).status_code == 200
            form = await web.get("/deposer")
            done = await web.post(
                "/deposer",
                data={
                    "csrf": csrf_of(form.text),
                    "name": "Claire Martin",
                    "email": "claire.martin@dupont-sa.fr",
                    "software": "manao-compta",
                    "subject": "Déposée pendant la panne",
                    "description": "Le site reste ouvert.",
                },
            )
            assert done.status_code == 200, done.text
            assert "réponse garantie avant" in done.text
            assert (await web.get("/documentation/manao-compta")).status_code == 200
            assert (await web.get("/annonces")).status_code == 200
            token = csrf_of((await web.get("/connexion")).text)
            await web.post(
                "/connexion",
                data={
                    "csrf": token,
                    "email": EMAIL_OF[Role.customer],
                    "token": system.tokens[Role.customer],
                },
            )
            assert (await web.get("/espace")).status_code == 200
    finally:
        await stack.start_nats()
        await stack.start_temporal()
