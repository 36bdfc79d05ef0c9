"""Work where people work (issue 14): trainers record an appointment held or missed and move
it, product managers declare releases with their documentation, technicians release or
discard quarantined mail, attachments show with their message, and the portal shows the
screen-sharing link. Everything from the site, through the services' APIs, real servers."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from html import unescape
from typing import Any

import httpx

from assistance import db, follow
from assistance.clock import PARIS
from assistance.directory import Role
from tests.helpers import auth, eventually
from tests.services.intake.mail_helpers import build_mail, send
from tests.services.site.support import EMAIL_OF, csrf_of, opened_dossier, site_client
from tests.services.site.test_no_codes import leftovers


def _form(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to `action` (its form token and its key)."""
    found = re.search(rf'<form [^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S)
    assert found, action
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', found[1]))
    assert set(fields) >= {"csrf", "envoi"}, fields
    return fields


def _flashes(html: str) -> list[str]:
    return [
        m.strip()
        for m in re.findall(r'<div class="flash[^"]*"[^>]*>(.*?)</div>', unescape(html), re.S)
    ]


async def _user_id(system: Any, role: Role) -> uuid.UUID:
    pool = await db.create_pool(system.settings.database_url, 1)
    try:
        found = await pool.fetchval(
            "SELECT id FROM directory.users WHERE email = $1", EMAIL_OF[role]
        )
    finally:
        await pool.close()
    return found  # type: ignore[no-any-return]


# --- trainers (R7) -------------------------------------------------------------------------


async def _booked(http: httpx.AsyncClient, system: Any, subject: str) -> dict[str, Any]:
    """An advanced-usage dossier, handed to training and booked with the demo trainer."""
    trainer = auth(system.tokens[Role.trainer])
    profile = await http.put(
        "/api/v1/training/trainers/me",
        headers=trainer,
        json={"softwares": ["manao-compta", "manao-paie"], "active": True},
    )
    assert profile.status_code == 200, profile.text
    dossier = await opened_dossier(http, system, subject=subject)
    tech = auth(system.tokens[Role.technician])
    base = f"/api/v1/dossiers/{dossier['id']}"
    assert (await http.post(f"{base}/take", headers=tech)).status_code == 200
    diagnosis = {"kind": "advanced_usage", "context": "Cabinet de 12 personnes", "need": subject}
    assert (await http.post(f"{base}/diagnosis", headers=tech, json=diagnosis)).is_success

    async def booked() -> dict[str, Any] | None:
        found = await http.get(
            "/api/v1/training/appointments", params={"dossier": dossier["id"]}, headers=trainer
        )
        items = [a for a in found.json()["items"] if a["status"] == "booked"]
        return items[0] if items else None

    return await eventually(booked, timeout=20)


async def test_a_trainer_moves_an_appointment_then_records_it_held(
    system: Any, http: httpx.AsyncClient
) -> None:
    appointment = await _booked(http, system, "Former l'équipe aux immobilisations")
    trainer = auth(system.tokens[Role.trainer])
    slots = await http.get(
        "/api/v1/training/slots",
        params={"software": appointment["software"], "limit": 50},
        headers=trainer,
    )
    assert slots.status_code == 200, slots.text
    mine = [
        s
        for s in slots.json()
        if s["trainer_id"] == appointment["trainer"]["id"]
        and s["starts_at"] != appointment["starts_at"]
    ]
    assert mine, slots.json()
    new_start = datetime.fromisoformat(mine[0]["starts_at"]).astimezone(PARIS)
    base = f"/bureau/formation/{appointment['id']}"
    async with site_client(system, Role.trainer) as web:
        page = (await web.get("/bureau/formation")).text
        assert appointment["reference"] in page
        moved = await web.post(
            f"{base}/deplacer",
            data={
                **_form(page, f"{base}/deplacer"),
                "day": new_start.date().isoformat(),
                "hour": new_start.strftime("%H:%M"),
                "reason": "Demande du client.",
            },
        )
        assert moved.status_code == 303
        page = (await web.get("/bureau/formation")).text
        assert _flashes(page) == [
            "Rendez-vous déplacé : le client et le formateur reçoivent l'invitation mise à jour."
        ]
        got = await http.get(f"/api/v1/training/appointments/{appointment['id']}", headers=trainer)
        assert datetime.fromisoformat(got.json()["starts_at"]) == new_start

        before = page
        held = await web.post(
            f"{base}/tenue",
            data={**_form(page, f"{base}/tenue"), "notes": "Immobilisations vues en détail."},
        )
        assert held.status_code == 303
        page = (await web.get("/bureau/formation")).text
        assert "Formation enregistrée comme tenue" in _flashes(page)[0]
        assert "Immobilisations vues en détail." in page
        assert f"{base}/tenue" not in page  # a held appointment is not acted on again
        assert leftovers(page) == []
        # a form of the page shown before, sent now: refused, in French, without a code
        again = await web.post(
            f"{base}/annuler", data={**_form(before, f"{base}/annuler"), "reason": "Trop tard."}
        )
        assert again.status_code == 303
        page = (await web.get("/bureau/formation")).text
        assert _flashes(page) == ["Ce rendez-vous n'est plus modifiable (formation tenue)."]
    got = await http.get(f"/api/v1/training/appointments/{appointment['id']}", headers=trainer)
    assert got.json()["status"] == "held"
    assert got.json()["notes"] == "Immobilisations vues en détail."


async def test_a_refused_appointment_action_is_said_in_french(
    system: Any, http: httpx.AsyncClient
) -> None:
    appointment = await _booked(http, system, "Former l'équipe à la paie des apprentis")
    base = f"/bureau/formation/{appointment['id']}"
    async with site_client(system, Role.trainer) as web:
        page = (await web.get("/bureau/formation")).text
        form = _form(page, f"{base}/absence")  # before it started: the API refuses
        r = await web.post(f"{base}/absence", data={**form, "notes": ""})
        assert r.status_code == 303
        shown = (await web.get("/bureau/formation")).text
    assert _flashes(shown) == [
        "Le rendez-vous n'a pas encore commencé : il ne peut être manqué."
    ], _flashes(shown)
    trainer = auth(system.tokens[Role.trainer])
    got = await http.get(f"/api/v1/training/appointments/{appointment['id']}", headers=trainer)
    assert got.json()["status"] == "booked"


async def test_only_trainers_act_on_appointments(system: Any, http: httpx.AsyncClient) -> None:
    appointment = await _booked(http, system, "Former l'équipe aux notes de frais")
    base = f"/bureau/formation/{appointment['id']}"
    async with site_client(system, Role.technician) as web:
        page = (await web.get("/bureau/formation")).text
        assert f"{base}/tenue" not in page  # technicians read the agenda, without the forms
        r = await web.post(f"{base}/tenue", data={"csrf": csrf_of(page), "notes": "Non."})
        assert r.status_code == 403
    async with site_client(system, Role.customer) as web:
        assert (await web.get("/bureau/formation")).status_code == 403
    async with site_client(system, Role.developer) as web:
        assert (await web.get("/bureau/formation")).status_code == 403


# --- product managers: releases and documentation (R11, R12) -------------------------------


async def _manages(system: Any, http: httpx.AsyncClient, software: str) -> None:
    manager = await _user_id(system, Role.product_manager)
    assigned = await http.put(
        f"/api/v1/softwares/{software}/product-managers/{manager}",
        headers=auth(system.tokens[Role.admin]),
    )
    assert assigned.status_code == 200, assigned.text


async def test_a_product_manager_declares_a_release_with_its_documentation(
    system: Any, http: httpx.AsyncClient
) -> None:
    await _manages(system, http, "manao-paie")
    version = f"9.{uuid.uuid4().int % 10_000}"
    async with site_client(system, Role.product_manager) as web:
        page = (await web.get("/bureau/versions")).text
        assert 'href="/bureau/versions" aria-current="page"' in page  # in the menu
        assert "Manao Paie" in page
        action = "/bureau/versions/manao-paie"
        sent = await web.post(
            action,
            data={
                **_form(page, action),
                "version": version,
                "notes": "Bulletins de paie : nouvel export.",
                "doc_title": "Export des bulletins",
                "doc_markdown": "# Export des bulletins\n\nMenu *Paie* > Exporter.",
            },
        )
        assert sent.status_code == 303
        page = (await web.get("/bureau/versions")).text
        assert _flashes(page) == [f"Version {version} déclarée : sa documentation est publiée."], (
            _flashes(page)
        )
        assert f"/documentation/manao-paie/{version}/export-des-bulletins" in page
        assert leftovers(page) == []
        # the same number declared again with other notes: refused, in words
        again = await web.post(
            action, data={**_form(page, action), "version": version, "notes": "Autre chose."}
        )
        assert again.status_code == 303
        page = (await web.get("/bureau/versions")).text
        assert _flashes(page) == [
            f"La version {version} de Manao Paie est déjà déclarée, autrement."
        ], _flashes(page)
    released = await http.get("/api/v1/softwares/manao-paie/releases")
    found = [r for r in released.json() if r["version"] == version]
    assert found and "export-des-bulletins" in found[0]["documentation"]
    doc = await http.get(f"/api/v1/docs/manao-paie/{version}/export-des-bulletins")
    assert doc.status_code == 200 and "Exporter" in doc.json()["html"]


async def test_the_releases_page_is_the_product_managers_only(system: Any) -> None:
    for role in (Role.technician, Role.customer, Role.developer, Role.trainer):
        async with site_client(system, role) as web:
            page = await web.get("/bureau/versions")
            assert page.status_code == 403, role
            home = (await web.get("/")).text
            assert 'href="/bureau/versions"' not in home, role


# --- technicians: the mail quarantine (R1) -------------------------------------------------


async def _quarantined(system: Any, http: httpx.AsyncClient, subject: str, **mail: Any) -> dict:
    """A bulk mail from the demo client's domain, sent over SMTP: set aside, not a dossier."""
    sender = f"claire.{uuid.uuid4().hex[:8]}@dupont-sa.fr"
    raw = build_mail(sender, subject, headers={"Precedence": "bulk"}, **mail)
    await send(system.settings.mail_listen_port, raw, sender)
    tech = auth(system.tokens[Role.technician])

    async def listed() -> dict | None:
        found = await http.get("/api/v1/mail/quarantine", headers=tech)
        items = [i for i in found.json() if i["subject"] == subject]
        return items[0] if items else None

    return await eventually(listed, timeout=20)


async def test_a_technician_releases_a_quarantined_mail_into_a_new_dossier(
    system: Any, http: httpx.AsyncClient
) -> None:
    subject = f"Relevé bancaire illisible {uuid.uuid4().hex[:6]}"
    item = await _quarantined(
        system,
        http,
        subject,
        text="Bonjour,\nle relevé joint ne s'importe pas.\nClaire",
        attachments=[("releve.csv", "text/csv", b"date;montant\n2026-01-02;12,50\n")],
    )
    path = f"/bureau/quarantaine/{item['mail_id']}"
    async with site_client(system, Role.technician) as web:
        listing = (await web.get("/bureau/quarantaine")).text
        assert subject in unescape(listing)
        assert "Envoi de masse" in listing
        assert item["from_address"] in listing
        received = datetime.fromisoformat(item["received_at"]).astimezone(PARIS)
        assert received.strftime("%d/%m/%Y %H:%M") in listing  # Paris time
        assert leftovers(listing) == []
        detail = (await web.get(path)).text
        assert "le relevé joint ne s'importe pas." in unescape(detail)
        assert leftovers(detail) == []
        [link] = re.findall(r'href="(/pieces-jointes/courriel/[^"]+)"', detail)
        download = await web.get(link)
        assert download.status_code == 200
        assert download.content == b"date;montant\n2026-01-02;12,50\n"
        assert download.headers["content-disposition"].startswith("attachment")
        sent = await web.post(
            f"{path}/ouvrir", data={**_form(detail, f"{path}/ouvrir"), "software": "manao-compta"}
        )
        assert sent.status_code == 303
        dossier_path = sent.headers["location"]
        assert dossier_path.startswith("/bureau/dossiers/")
        shown = await web.get(dossier_path)
        assert shown.status_code == 200
        [flash] = _flashes(shown.text)
        assert flash.startswith("Courriel libéré : dossier ") and flash.endswith(" ouvert."), flash
        after = (await web.get(path)).text
        assert "Ce courriel est déjà traité." in unescape(after)
    tech = auth(system.tokens[Role.technician])
    dossier_id = dossier_path.rsplit("/", 1)[-1]
    got = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=tech)
    assert got.status_code == 200 and got.json()["software"] == "manao-compta"
    assert got.json()["channel"] == "mail"
    pending = await http.get("/api/v1/mail/quarantine", headers=tech)
    assert item["mail_id"] not in [i["mail_id"] for i in pending.json()]


async def test_a_quarantined_mail_joins_an_existing_dossier_or_is_discarded(
    system: Any, http: httpx.AsyncClient
) -> None:
    dossier = await opened_dossier(http, system, subject="Dossier qui recevra un courriel")
    joining = await _quarantined(
        system, http, f"Complément {uuid.uuid4().hex[:6]}", text="Voici le complément demandé."
    )
    spam = await _quarantined(system, http, f"Promotion {uuid.uuid4().hex[:6]}")
    async with site_client(system, Role.technician) as web:
        path = f"/bureau/quarantaine/{joining['mail_id']}"
        detail = (await web.get(path)).text
        wrong = await web.post(
            f"{path}/rattacher",
            data={**_form(detail, f"{path}/rattacher"), "reference": "D-1999-999999"},
        )
        assert wrong.status_code == 303 and wrong.headers["location"] == path
        detail = (await web.get(path)).text
        assert _flashes(detail) == ["Aucun dossier ne porte cette référence."]
        sent = await web.post(
            f"{path}/rattacher",
            data={**_form(detail, f"{path}/rattacher"), "reference": dossier["reference"]},
        )
        assert sent.status_code == 303
        assert sent.headers["location"] == f"/bureau/dossiers/{dossier['id']}"

        path = f"/bureau/quarantaine/{spam['mail_id']}"
        detail = (await web.get(path)).text
        sent = await web.post(
            f"{path}/ecarter",
            data={**_form(detail, f"{path}/ecarter"), "reason": "Publicité."},
        )
        assert sent.status_code == 303 and sent.headers["location"] == "/bureau/quarantaine"
        listing = (await web.get("/bureau/quarantaine?etat=ecartes")).text
        assert spam["subject"] in unescape(listing) and "Écarté" in unescape(listing)
        assert leftovers(listing) == []
    tech = auth(system.tokens[Role.technician])

    async def joined() -> bool:
        got = await http.get(f"/api/v1/dossiers/{dossier['id']}", headers=tech)
        return any(e["text"] == "Voici le complément demandé." for e in got.json()["timeline"])

    await eventually(joined, timeout=20)


async def test_the_quarantine_is_the_technicians_only(system: Any) -> None:
    for role in (Role.customer, Role.trainer, Role.developer, Role.product_manager):
        async with site_client(system, role) as web:
            assert (await web.get("/bureau/quarantaine")).status_code == 403, role
            assert 'href="/bureau/quarantaine"' not in (await web.get("/")).text, role
    async with site_client(system, Role.technician) as web:
        assert 'href="/bureau/quarantaine"' in (await web.get("/")).text


# --- attachments with their message (issue 14) ---------------------------------------------


def _entries(html: str) -> list[str]:
    """Each timeline entry's HTML, in order (up to the next entry)."""
    timeline = html.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    return ['<li class="entry ' + part for part in timeline.split('<li class="entry ')[1:]]


def _entry_with(html: str, text: str) -> str:
    found = [e for e in _entries(unescape(html)) if text in e]
    assert len(found) == 1, (text, _entries(unescape(html)))
    return found[0]


async def test_files_show_under_the_reply_they_were_posted_with(
    system: Any, http: httpx.AsyncClient
) -> None:
    dossier = await opened_dossier(http, system, subject="Pièces jointes et leurs messages")
    tech = auth(system.tokens[Role.technician])
    assert (await http.post(f"/api/v1/dossiers/{dossier['id']}/take", headers=tech)).is_success
    portal, office = f"/espace/dossiers/{dossier['id']}", f"/bureau/dossiers/{dossier['id']}"
    async with site_client(system, Role.customer) as web:
        page = (await web.get(portal)).text
        sent = await web.post(
            f"{portal}/repondre",
            data={**_form(page, f"{portal}/repondre"), "text": "Voici la capture d'écran."},
            files={"files": ("capture.png", b"\x89PNG capture", "image/png")},
        )
        assert sent.status_code == 303
    async with site_client(system, Role.technician) as web:
        page = (await web.get(office)).text
        sent = await web.post(
            f"{office}/repondre",
            data={**_form(page, f"{office}/repondre"), "text": "Voici la procédure."},
            files={"files": ("procedure.pdf", b"%PDF-1.4 procedure", "application/pdf")},
        )
        assert sent.status_code == 303
        page = (await web.get(office)).text
        mine = _entry_with(page, "Voici la capture d'écran.")
        theirs = _entry_with(page, "Voici la procédure.")
        assert "capture.png" in mine and "procedure.pdf" not in mine
        assert "procedure.pdf" in theirs and "capture.png" not in theirs
        assert "Autres pièces jointes" not in page
        [link] = re.findall(r'href="(/pieces-jointes/[^"]+)"[^>]*>procedure\.pdf<', theirs)
        assert (await web.get(link)).content == b"%PDF-1.4 procedure"
    async with site_client(system, Role.customer) as web:
        page = (await web.get(portal)).text
        assert "capture.png" in _entry_with(page, "Voici la capture d'écran.")
        assert "procedure.pdf" in _entry_with(page, "Voici la procédure.")
        assert "Autres pièces jointes" not in page


async def test_a_mails_files_show_under_the_mail(system: Any, http: httpx.AsyncClient) -> None:
    subject = f"Import refusé {uuid.uuid4().hex[:6]}"
    item = await _quarantined(
        system,
        http,
        subject,
        text="Le fichier joint est refusé à l'import.",
        attachments=[("import.csv", "text/csv", b"compte;libelle\n401;Fournisseurs\n")],
    )
    path = f"/bureau/quarantaine/{item['mail_id']}"
    async with site_client(system, Role.technician) as web:
        detail = (await web.get(path)).text
        sent = await web.post(
            f"{path}/ouvrir", data={**_form(detail, f"{path}/ouvrir"), "software": "manao-compta"}
        )
        dossier_path = sent.headers["location"]

        async def with_file() -> str | None:
            page = (await web.get(dossier_path)).text
            # the file's link, not its name: the name is in the text of the deposit shown
            # before its entry (which carries the files) is projected
            return page if "/pieces-jointes/courriel/" in page else None

        page = await eventually(with_file, timeout=20)
        entry = _entry_with(page, "Le fichier joint est refusé à l'import.")
        [link] = re.findall(r'href="(/pieces-jointes/courriel/[^"]+)"[^>]*>import\.csv<', entry)
        assert (await web.get(link)).content == b"compte;libelle\n401;Fournisseurs\n"
    dossier_id = dossier_path.rsplit("/", 1)[-1]
    async with site_client(
        system, Role.customer
    ) as web:  # the sender's company is the demo client's
        page = (await web.get(f"/espace/dossiers/{dossier_id}")).text
        entry = _entry_with(page, "Le fichier joint est refusé à l'import.")
        [link] = re.findall(r'href="(/pieces-jointes/courriel/[^"]+)"', entry)
        assert (await web.get(link)).content == b"compte;libelle\n401;Fournisseurs\n"


async def _mailed_dossier(system: Any, sender: str, subject: str, file: tuple) -> str:
    """A mail with one file from an address the directory does not know: its dossier's id."""
    raw = build_mail(
        sender, subject, text=f"Bonjour,\nvoici {file[0]}.", name="", attachments=[file]
    )
    await send(system.settings.mail_listen_port, raw, sender)
    pool = await db.create_pool(system.settings.database_url, 1)
    try:

        async def opened() -> str | None:
            found = await pool.fetchval(
                """SELECT m.dossier_id FROM intake.mail_messages m
                   JOIN dossier.timeline o ON o.dossier_id = m.dossier_id AND o.kind = 'opened'
                   JOIN dossier.timeline r ON r.dossier_id = m.dossier_id AND r.kind = 'received'
                   WHERE lower(m.from_address) = $1 AND r.data ? 'attachments'""",
                sender,
            )
            return str(found) if found else None

        return await eventually(opened, timeout=30)
    finally:
        await pool.close()


async def test_a_followed_dossier_gives_its_files_through_its_link_only(
    system: Any, http: httpx.AsyncClient
) -> None:
    """Issue 14: the follow page (no account) shows each message's files and downloads them
    with the link's authority; another dossier's files are not found through it."""
    tag = uuid.uuid4().hex[:8]
    lea, paul = f"lea.{tag}@cabinet-{tag}.fr", f"paul.{tag}@autre-{tag}.fr"
    mine = await _mailed_dossier(system, lea, f"Relevé {tag}", ("releve.csv", "text/csv", b"a;b\n"))
    theirs = await _mailed_dossier(
        system, paul, f"Bilan {tag}", ("bilan.txt", "text/plain", b"confidentiel")
    )
    tech = auth(system.tokens[Role.technician])
    assert (await http.post(f"/api/v1/dossiers/{mine}/take", headers=tech)).is_success
    office = f"/bureau/dossiers/{mine}"
    async with site_client(system, Role.technician) as web:
        page = (await web.get(office)).text
        sent = await web.post(
            f"{office}/repondre",
            data={**_form(page, f"{office}/repondre"), "text": "Voici la procédure."},
            files={"files": ("procedure.pdf", b"%PDF-1.4 procedure", "application/pdf")},
        )
        assert sent.status_code == 303
    token = follow.sign(uuid.UUID(mine), lea, system.settings.mail_signing_key)
    other = follow.sign(uuid.UUID(theirs), paul, system.settings.mail_signing_key)

    async with httpx.AsyncClient(base_url=system.base_url, timeout=60) as web:  # no account

        async def answered() -> str | None:
            page = unescape((await web.get(f"/suivi/{token}")).text)
            return page if "Voici la procédure." in page else None

        page = await eventually(answered, timeout=30)
        mailed = _entry_with(page, "voici releve.csv")
        [mail_file] = re.findall(
            rf'href="(/suivi/{token}/pieces-jointes/courriel/[^"]+)"[^>]*>releve\.csv<', mailed
        )
        replied = _entry_with(page, "Voici la procédure.")
        [upload] = re.findall(
            rf'href="(/suivi/{token}/pieces-jointes/[0-9a-f-]+)"[^>]*>procedure\.pdf<', replied
        )
        assert "Autres pièces jointes" not in page and leftovers(page) == []
        got = await web.get(mail_file)
        assert (got.status_code, got.content) == (200, b"a;b\n")
        assert got.headers["content-disposition"].startswith("attachment;")
        # the API: the dossier service checks the link, then sends to mail intake's download
        # with a grant for that file alone (decision 0019, addendum)
        my_file = mail_file.rsplit("/", 1)[1]
        sent_on = await web.get(f"/api/v1/follow/{token}/attachments/{my_file}")
        assert sent_on.status_code == 303, sent_on.text
        granted = sent_on.headers["location"]
        assert granted.startswith(f"/api/v1/mail/attachments/{my_file}/granted?acces=")
        assert sent_on.headers["cache-control"] == "private, no-store"
        got = await web.get(granted)
        assert (got.status_code, got.content) == (200, b"a;b\n")
        assert got.headers["content-disposition"].startswith("attachment;")
        got = await web.get(upload)
        assert (got.status_code, got.content) == (200, b"%PDF-1.4 procedure")
        assert got.headers["content-disposition"].startswith("attachment;")

        # the other dossier's file: through its own link only
        page = unescape((await web.get(f"/suivi/{other}")).text)
        [their_file] = re.findall(r'href="/suivi/[^"]+/courriel/([0-9a-f-]+)"[^>]*>bilan', page)
        ok = await web.get(f"/suivi/{other}/pieces-jointes/courriel/{their_file}")
        assert (ok.status_code, ok.content) == (200, b"confidentiel")
        crossed = await web.get(f"/suivi/{token}/pieces-jointes/courriel/{their_file}")
        assert crossed.status_code == 404 and b"confidentiel" not in crossed.content
        assert "Introuvable" in unescape(crossed.text), crossed.text
        api = await web.get(f"/api/v1/follow/{token}/attachments/{their_file}")
        assert (api.status_code, api.json()["error"]["code"]) == (404, "attachment_not_found")
        # a grant opens its one file, not another dossier's
        borrowed = granted.replace(f"/attachments/{my_file}/", f"/attachments/{their_file}/")
        api = await web.get(borrowed)
        assert (api.status_code, api.json()["error"]["code"]) == (404, "attachment_not_found")
        upload_id = upload.rsplit("/", 1)[1]
        assert (await web.get(f"/suivi/{other}/pieces-jointes/{upload_id}")).status_code == 404
        # a forged link opens nothing; the signed-in downloads still ask to sign in
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        assert (await web.get(mail_file.replace(token, forged))).status_code == 404
        assert (await web.get(upload.replace(token, forged))).status_code == 404
        assert (await web.get(f"/pieces-jointes/{upload_id}")).status_code in (303, 401)

        # a file only an internal entry lists is not the customer's
        pool = await db.create_pool(system.settings.database_url, 1)
        try:
            await pool.execute(
                "UPDATE dossier.timeline SET visibility = 'internal' "
                "WHERE dossier_id = $1 AND kind = 'received'",
                uuid.UUID(theirs),
            )
        finally:
            await pool.close()
        hidden = await web.get(f"/api/v1/follow/{other}/attachments/{their_file}")
        assert (hidden.status_code, hidden.json()["error"]["code"]) == (
            404,
            "attachment_not_found",
        )
        hidden = await web.get(f"/suivi/{other}/pieces-jointes/courriel/{their_file}")
        assert hidden.status_code == 404 and b"confidentiel" not in hidden.content

        # a revoked link downloads nothing any more
        revoked = await http.post(f"/api/v1/dossiers/{mine}/follow-links/revoke", headers=tech)
        assert revoked.status_code == 200, revoked.text
        assert (await web.get(mail_file)).status_code == 404
        assert (await web.get(upload)).status_code == 404
        api = await web.get(f"/api/v1/follow/{token}/attachments/{my_file}")
        assert (api.status_code, api.json()["error"]["code"]) == (404, "follow_link_invalid")


# --- the screen-sharing link in the portal (R6) --------------------------------------------


async def test_the_portal_shows_the_screen_sharing_link(
    system: Any, http: httpx.AsyncClient
) -> None:
    dossier = await opened_dossier(http, system, subject="Guider le paramétrage des droits")
    tech = auth(system.tokens[Role.technician])
    assert (await http.post(f"/api/v1/dossiers/{dossier['id']}/take", headers=tech)).is_success
    portal, office = f"/espace/dossiers/{dossier['id']}", f"/bureau/dossiers/{dossier['id']}"
    async with site_client(system, Role.customer) as web:
        assert "partage-ecran" not in (await web.get(portal)).text  # no invitation yet
    async with site_client(system, Role.technician) as web:
        page = (await web.get(office)).text
        sent = await web.post(
            f"{office}/partage-ecran", data=_form(page, f"{office}/partage-ecran")
        )
        assert sent.status_code == 303
    got = (await http.get(f"/api/v1/dossiers/{dossier['id']}", headers=tech)).json()
    [entry] = [e for e in got["timeline"] if e["kind"] == "screen_share"]
    link = entry["data"]["link"]
    at = datetime.fromisoformat(entry["at"]).astimezone(PARIS)
    async with site_client(system, Role.customer) as web:
        page = unescape((await web.get(portal)).text)
    callout = page.split('id="partage-ecran"', 1)[1].split("</section>", 1)[0]
    assert f'href="{link}"' in callout
    assert "Rejoindre le partage d'écran" in callout
    assert at.strftime("%H:%M") in callout  # its time, Paris time
    assert page.index('id="partage-ecran"') < page.index('id="history-title"')  # prominent
    assert leftovers(page) == []
