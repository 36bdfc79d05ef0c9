"""No 5xx for any input, one text policy at every boundary (issue 11), over the real stack.

Each probe of the issue answers a 4xx naming the field, in French; the dossier it was aimed at
stays readable; a CR/LF that arrives by mail is cleaned, recorded, and never reaches a header.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from assistance import db
from assistance.directory import Role
from tests.helpers import auth, deposit_body, eventually
from tests.services.intake.mail_helpers import build_mail, dossier, mail_by_message_id, send
from tests.services.site.support import csrf_of

ROOT = Path(__file__).resolve().parents[2]
CONTROL = "Ce texte contient un caractère de contrôle interdit (caractère nul ou invisible)."
ONE_LINE = "Ce texte doit tenir sur une seule ligne, sans caractère de contrôle."
FRENCH = re.compile(r"[àâçéèêëîïôûùœ]|\b(le|la|les|un|une|doit|est|au|ce|ne)\b", re.IGNORECASE)


def refused(r: httpx.Response, status: int, field: str | None, message: str | None = None) -> None:
    """The error shape, the exact status and field, a message in French (never pydantic's)."""
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["field"] == field, r.text
    assert FRENCH.search(error["message"]), error["message"]
    assert "should" not in error["message"] and "Input" not in error["message"], r.text
    if message is not None:
        assert error["message"] == message, r.text


@pytest.fixture
async def pool(system) -> Any:
    pool = await db.create_pool(system.settings.database_url, 2)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def opened(http: httpx.AsyncClient, system) -> str:
    r = await http.post("/api/v1/requests", json=deposit_body(subject="Sonde de saisie"))
    assert r.status_code == 201, r.text
    dossier_id = r.json()["id"]
    staff = auth(system.tokens[Role.technician])

    async def readable() -> bool:
        got = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=staff)
        return got.status_code == 200

    await eventually(readable, timeout=30)
    return str(dossier_id)


async def test_a_nul_in_a_dossier_command_is_refused_and_the_dossier_goes_on(
    http: httpx.AsyncClient, system, opened: str
) -> None:
    tech = auth(system.tokens[Role.technician])
    base = f"/api/v1/dossiers/{opened}"
    assert (await http.post(f"{base}/take", headers=tech)).status_code == 200
    probes = [
        ("close", {"resolution": "a\x00b"}, "resolution"),
        ("notes", {"text": "note\x00"}, "text"),
        ("responses", {"text": "réponse\x1b[31m"}, "text"),
        ("reopen", {"reason": "\x00"}, "reason"),
        ("workaround", {"text": "a\x07"}, "text"),
        ("diagnosis", {"kind": "usage", "context": "c\x00", "need": "n"}, "context"),
    ]
    for command, body, field in probes:
        r = await http.post(f"{base}/{command}", json=body, headers=tech)
        refused(r, 422, field, f"{field} : {CONTROL}")
    # the dossier is not frozen: a clean note still reaches its timeline
    assert (await http.post(f"{base}/notes", json={"text": "propre"}, headers=tech)).is_success

    async def noted() -> bool:
        got = (await http.get(base, headers=tech)).json()
        return any(e["text"] == "propre" for e in got["timeline"])

    await eventually(noted, timeout=30)


async def test_a_deposit_refuses_controls_and_line_breaks_naming_the_field(
    http: httpx.AsyncClient, system
) -> None:
    probes = [
        ({"description": "a\x00b"}, "description", CONTROL),
        ({"subject": "objet\x00"}, "subject", ONE_LINE),
        ({"subject": "objet\r\nBcc: x@exemple.fr"}, "subject", ONE_LINE),
        ({"requester": {"email": "eve@exemple.fr", "name": "Eve\x00"}}, "requester.name", None),
        (
            {"requester": {"email": "eve@exemple.fr", "name": "Eve\r\nBcc: v@exemple.fr"}},
            "requester.name",
            ONE_LINE,
        ),
        ({"software": "manao\x00"}, "software", ONE_LINE),
    ]
    for overrides, field, message in probes:
        r = await http.post("/api/v1/requests", json=deposit_body(**overrides))
        refused(r, 422, field, f"{field} : {message}" if message else None)
    call = {**deposit_body(), "caller_phone": "01\x0023"}
    r = await http.post("/api/v1/calls", json=call, headers=auth(system.tokens[Role.technician]))
    refused(r, 422, "caller_phone")
    # tab and new lines are text, not controls
    ok = await http.post("/api/v1/requests", json=deposit_body(description="a\tb\nc\r\nd"))
    assert ok.status_code == 201, ok.text


async def test_pydantic_errors_reach_people_in_french(http: httpx.AsyncClient, system) -> None:
    tech = auth(system.tokens[Role.technician])
    r = await http.post("/api/v1/requests", json=deposit_body(subject=""))
    refused(r, 422, "subject", "subject : Ce champ ne peut pas être vide.")
    r = await http.post("/api/v1/requests", json=deposit_body(extra="x"))
    refused(r, 422, "extra", "extra : Ce champ n'est pas attendu.")
    body = deposit_body()
    del body["description"]
    r = await http.post("/api/v1/requests", json=body)
    refused(r, 422, "description", "description : Ce champ est obligatoire.")
    r = await http.get("/api/v1/dossiers", params={"limit": "beaucoup"}, headers=tech)
    refused(r, 422, "limit", "limit : Un nombre entier est attendu.")
    r = await http.get("/api/v1/dossiers/pas-un-id", headers=tech)
    refused(r, 422, "dossier_id", "dossier_id : Un identifiant (UUID) est attendu.")
    r = await http.post(
        "/api/v1/requests", content=b'{"subject": ', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == {
        "code": "json_invalid",
        "message": "Le corps de la demande n'est pas un JSON valide.",
        "field": None,
    }
    r = await http.post(
        "/api/v1/requests", content=b"\xff\xfe{", headers={"Content-Type": "application/json"}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "json_invalid"), r.text


async def test_query_parameters_follow_the_policy_and_their_enumerations(
    http: httpx.AsyncClient, system
) -> None:
    tech = auth(system.tokens[Role.technician])
    dev = auth(system.tokens[Role.developer])
    probes = [
        ("/api/v1/dossiers", {"q": "a\x00b"}, tech, "q"),
        ("/api/v1/dossiers", {"status": "a\x00b"}, tech, "status"),
        ("/api/v1/dossiers", {"status": "ouvert"}, tech, "status"),
        ("/api/v1/reports/breaches", {"software": "a\x00b"}, tech, "software"),
        ("/api/v1/bugs", {"q": "a\x00b"}, dev, "q"),
        ("/api/v1/bugs", {"software": "a\x00"}, dev, "software"),
        ("/api/v1/workarounds", {"version": "5\x00"}, tech, "version"),
        ("/api/v1/evolutions", {"status": "perdu"}, tech, "status"),
        ("/api/v1/training/slots", {"software": "a\x00"}, tech, "software"),
        ("/api/v1/training/trainers", {"software": "a\x00"}, tech, "software"),
        ("/api/v1/mail/quarantine", {"reason": "a\x00b"}, tech, "reason"),
    ]
    for path, params, who, field in probes:
        refused(await http.get(path, params=params, headers=who), 422, field)
    r = await http.get("/api/v1/dossiers", params={"status": "ouvert"}, headers=tech)
    assert r.json()["error"]["message"].startswith("status : Valeur inconnue ; valeurs acceptées")
    ok = await http.get("/api/v1/dossiers", params={"status": "closed"}, headers=tech)
    assert ok.status_code == 200, ok.text


async def test_offsets_and_dates_are_bounded(http: httpx.AsyncClient, system) -> None:
    tech = auth(system.tokens[Role.technician])
    too_far = "9223372036854775808"
    for path, who in [
        ("/api/v1/dossiers", tech),
        ("/api/v1/evolutions", tech),
        ("/api/v1/training/appointments", tech),
        ("/api/v1/mail/quarantine", tech),
        ("/api/v1/bugs", auth(system.tokens[Role.developer])),
        ("/api/v1/workarounds", tech),
    ]:
        r = await http.get(path, params={"offset": too_far}, headers=who)
        refused(r, 422, "offset", "offset : La valeur doit être au plus 1000000.")
    dates = "Date hors des limites (années 1970 à 2200)."
    for path in ("/api/v1/reports/breaches", "/api/v1/mail/ledger"):
        for name, value in [
            ("since", "0001-01-01T00:00:00+14:00"),
            ("until", "9999-12-31T23:59:59-12:00"),
        ]:
            r = await http.get(path, params={name: value}, headers=tech)
            refused(r, 422, name, f"{name} : {dates}")
        assert (await http.get(path, headers=tech)).status_code == 200
    for week in ("9999-W52", "0001-W01"):
        r = await http.get("/api/v1/announcements", params={"week": week})
        refused(r, 422, "week", "Semaine hors des limites (années 1970 à 2200).")
    ok = await http.get("/api/v1/announcements", params={"week": "2026-W10"})
    assert ok.status_code == 200, ok.text


async def test_an_absence_reason_follows_the_policy(http: httpx.AsyncClient, system) -> None:
    trainer = auth(system.tokens[Role.trainer])
    me = await http.put(
        "/api/v1/training/trainers/me", json={"softwares": ["manao-compta"]}, headers=trainer
    )
    assert me.status_code == 200, me.text
    absence = {
        "starts_at": "2030-03-04T09:00:00+01:00",
        "ends_at": "2030-03-04T12:00:00+01:00",
        "reason": "congé\x00",
    }
    r = await http.post(
        f"/api/v1/training/trainers/{me.json()['id']}/absences", json=absence, headers=trainer
    )
    refused(r, 422, "reason", f"reason : {CONTROL}")


async def _raw_post(system, headers: dict[str, str], parts: list[bytes]) -> tuple[int, Any]:
    """POST over a bare socket: send the headers and only `parts` of the body, then read the
    answer (an HTTP client would fail writing the rest once the server has answered)."""
    url = httpx.URL(system.base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(
            f"POST /api/v1/requests HTTP/1.1\r\nHost: {url.host}\r\n"
            f"Content-Type: application/json\r\n{head}\r\n".encode()
        )
        for part in parts:
            writer.write(part)
            await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 60)
        answer_head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", answer_head, re.I).group(1))
        body = await reader.readexactly(length)
        return int(status_line.split()[1]), json.loads(body)
    finally:
        writer.close()


async def test_a_body_over_the_cap_is_refused_before_it_is_read(system) -> None:
    cap = system.settings.max_body_bytes
    too_large = {
        "code": "body_too_large",
        "message": f"La demande est trop volumineuse (au plus {cap // (1024 * 1024)} Mio).",
        "field": None,
    }
    # 50 MB announced: refused on the Content-Length, after 64 KiB sent of the 50 MB
    declared = await _raw_post(
        system, {"Content-Length": str(50 * 1024 * 1024)}, [b"{" + b" " * 65_535]
    )
    assert declared == (413, {"error": too_large})
    # no Content-Length: counted as it streams, refused once past the cap
    # (exactly one byte past the cap: the server reads all that was sent, then answers)
    sizes = [1024 * 1024] * (cap // (1024 * 1024)) + [cap % (1024 * 1024) + 1]
    chunked = [b"%x\r\n%s\r\n" % (n, b" " * n) for n in sizes]
    streamed = await _raw_post(system, {"Transfer-Encoding": "chunked"}, chunked)
    assert streamed == (413, {"error": too_large})
    # a body under the cap is read as usual
    async with httpx.AsyncClient(base_url=system.base_url, timeout=60) as client:
        ok = await client.post("/api/v1/requests", json=deposit_body())
    assert ok.status_code == 201, ok.text


async def test_the_site_form_refuses_a_name_on_two_lines(system) -> None:
    async with httpx.AsyncClient(base_url=system.base_url, timeout=60) as web:
        token = csrf_of((await web.get("/deposer")).text)
        form = {
            "csrf": token,
            "name": "Eve\r\nBcc: victime@exemple.fr",
            "email": "eve@exemple.fr",
            "software": "manao-compta",
            "subject": "Nom sur deux lignes",
            "description": "x",
        }
        r = await web.post("/deposer", data=form)
    assert r.status_code == 422, r.text[:500]
    assert ONE_LINE in unescape(r.text)


def _encoded(name: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(name.encode()).decode()}?="


async def test_a_mail_with_a_two_line_name_is_cleaned_and_the_dossier_says_so(
    http: httpx.AsyncClient, system, pool: asyncpg.Pool, stack
) -> None:
    port = system.settings.mail_listen_port
    sender = "eve.crlf@dupont-sa.fr"
    raw = build_mail(
        sender,
        "[manao-compta] Objet\x07 sale",
        "Bonjour\x00,\nle texte\x1b porte des contrôles.",
        name="Placeholder",
    ).replace(b"Placeholder", _encoded("Eve\r\nBcc: victime@exemple.fr").encode())
    assert await send(port, raw, sender) == {}
    message_id = re.search(rb"Message-ID: (<[^>]+>)", raw, re.IGNORECASE).group(1).decode()
    mail = await eventually(lambda: mail_by_message_id(pool, message_id), timeout=30)
    assert mail["outcome"] == "opened", dict(mail)
    assert mail["from_name"] == "Eve Bcc: victime@exemple.fr"
    assert sorted(mail["details"]["text_cleaned"]) == ["from_name", "subject", "text"]
    d = await dossier(http, system.tokens, str(mail["dossier_id"]))
    assert d["requester"]["name"] == "Eve Bcc: victime@exemple.fr"
    assert d["subject"] == "Objet sale"
    assert "\x00" not in d["description"] and "\x1b" not in d["description"]
    assert d["description"].endswith(
        "[Texte nettoyé à la réception : caractères de contrôle retirés ou sauts de ligne "
        "repliés (nom de l'expéditeur, objet, texte).]"
    )
    # the acknowledgement went out: its To header holds one line
    reference = d["reference"]

    def acknowledged() -> Any:
        return [m for m in stack.mail.messages if reference.encode() in m.data]

    caught = await eventually(lambda: asyncio.sleep(0, acknowledged()), timeout=30)
    headers = caught[0].data.split(b"\r\n\r\n", 1)[0]
    assert b"Bcc" not in headers.replace(b"Bcc: victime", b"")  # no header was injected


async def test_the_migration_repairs_text_already_stored(pool: asyncpg.Pool) -> None:
    sql = (ROOT / "services/intake/migrations/010_clean_text.sql").read_text()
    async with pool.acquire() as conn:
        rollback = conn.transaction()  # the row is never seen by other tests (the mail ledger)
        await rollback.start()
        try:
            mail_id = await conn.fetchval(
                """INSERT INTO intake.mail_messages (id, dedupe_key, source, from_name, subject,
                       raw, size_bytes, sha256, received_at, outcome, text_body)
                   VALUES (gen_random_uuid(), 'test:' || gen_random_uuid(), 'smtp', $1, $2,
                       ''::bytea, 0, '', now(), 'quarantined', $3)
                   RETURNING id""",
                "Eve\r\nBcc: victime@exemple.fr\x07",
                "Objet\x0bsale",
                "ligne 1\r\nligne 2\x1b\tfin",
            )
            await conn.execute(sql)
            row = await conn.fetchrow(
                "SELECT from_name, subject, text_body FROM intake.mail_messages WHERE id = $1",
                mail_id,
            )
        finally:
            await rollback.rollback()
    assert dict(row) == {
        "from_name": "Eve Bcc: victime@exemple.fr",
        "subject": "Objetsale",
        "text_body": "ligne 1\r\nligne 2\tfin",
    }
