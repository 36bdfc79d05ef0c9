"""Mail over real SMTP and LMTP (R1): the receiver the `system` fixture starts, smtplib over
loopback, the real Temporal/NATS/PostgreSQL stack behind it, outbound mail caught by the
stack's mail catcher."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import time
import uuid
from collections.abc import AsyncIterator
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.client import Client

from assistance import db, directory, grants
from assistance.directory import Role
from deploy.local.stack import CaughtMail, LocalStack, free_port
from services.intake.mail import receiver as mail_receiver
from services.intake.mail.ingest import Delivery, MailIngestor, StorageUnavailable
from services.intake.mail.rules import subject_of
from tests.helpers import auth, eventually
from tests.services.intake.mail_helpers import (
    SUPPORT,
    build_mail,
    corpus,
    counts,
    delta,
    dossier,
    first_mail,
    ledger,
    mail_by_message_id,
    send,
    unique,
)

DUPONT = "dupont-sa.fr"  # the demo organisation's mail domain


@pytest.fixture
async def pool(system) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(system.settings.database_url, 2)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def smtp_port(system) -> int:
    port = system.settings.mail_listen_port
    await eventually(lambda: _listening(port), timeout=10)
    return port


@pytest.fixture
def tech(system) -> str:
    return system.tokens[Role.technician]


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


def mid_of(raw: bytes) -> str:
    return str(message_from_bytes(raw, policy=default_policy)["Message-ID"])


async def stored(pool: asyncpg.Pool, message_id: str) -> asyncpg.Record:
    row = await mail_by_message_id(pool, message_id)
    assert row is not None, f"{message_id} not stored"
    return row


async def quarantine_of(pool: asyncpg.Pool, mail_id: Any) -> asyncpg.Record:
    return await pool.fetchrow("SELECT * FROM intake.mail_quarantine WHERE mail_id = $1", mail_id)


async def mails_to(stack: LocalStack, address: str, wait: float = 1.5) -> list[CaughtMail]:
    await asyncio.sleep(wait)
    return [m for m in stack.mail.messages if address.lower() in (r.lower() for r in m.rcpt_tos)]


# --- opening -------------------------------------------------------------------------------------


async def test_a_new_mail_opens_a_dossier_for_a_known_organisation(
    http: httpx.AsyncClient, system, pool, smtp_port, tech, stack
) -> None:
    before = await ledger(http, tech)
    sender = unique("paul").replace("exemple-client.fr", DUPONT)
    raw = build_mail(sender, "[manao-paie] Bulletin de février faux", name="Paul Durand")
    assert await send(smtp_port, raw, sender) == {}
    mail = await stored(pool, mid_of(raw))
    assert (mail["outcome"], mail["source"], mail["envelope_from"]) == ("opened", "smtp", sender)
    assert mail["details"]["requester_verified"] is True
    assert mail["details"]["software_guessed"] is False
    d = await dossier(http, system.tokens, str(mail["dossier_id"]))
    assert (d["channel"], d["software"], d["subject"]) == (
        "mail",
        "manao-paie",
        "Bulletin de février faux",
    )
    assert d["requester"] == {"email": sender, "name": "Paul Durand"}
    # the organisation was matched by domain: its customer sees the dossier
    mine = await http.get(f"/api/v1/dossiers/{d['id']}", headers=auth(system.tokens[Role.customer]))
    assert mine.status_code == 200
    # the acknowledgement threads on the customer's Message-ID
    ack = (await first_mail(stack, d["reference"], system.settings.mail_signing_key)).message()
    assert ack["In-Reply-To"] == mid_of(raw)
    assert ack["To"] == sender
    assert delta(before, await ledger(http, tech)) == {"received": 1, "opened": 1}


async def test_an_unknown_sender_opens_an_unverified_dossier(
    http: httpx.AsyncClient, system, pool, smtp_port
) -> None:
    sender = unique()
    raw = build_mail(sender, "Question", name="")
    first_software = min(await directory.software_codes(pool))
    await send(smtp_port, raw, sender)
    mail = await stored(pool, mid_of(raw))
    assert mail["outcome"] == "opened"
    assert mail["details"]["requester_verified"] is False
    assert mail["details"]["software_guessed"] is True
    request = await pool.fetchrow(
        "SELECT organisation_id, requester_name, software, channel FROM intake.requests "
        "WHERE id = $1",
        mail["dossier_id"],
    )
    assert dict(request) == {
        "organisation_id": None,
        "requester_name": sender.partition("@")[0],
        "software": first_software,  # none named: the first, flagged as guessed
        "channel": "mail",
    }


# --- the corpus over the wire --------------------------------------------------------------------

CORPUS_OUTCOMES = [
    ("fr_encoded_words.eml", "frederic.leger@dupont-sa.fr", "opened", None),
    ("quoted_printable_latin1.eml", "claire.martin@dupont-sa.fr", "opened", None),
    ("cp1252_raw_headers.eml", "renee.dupre@dupont-sa.fr", "opened", None),
    ("utf8_raw_headers.eml", "helene.etienne@dupont-sa.fr", "opened", None),
    ("multipart_alternative.eml", "claire.martin@dupont-sa.fr", "opened", None),
    ("html_only.eml", "paie@dupont-sa.fr", "opened", None),
    ("broken_mime.eml", "serge@dupont-sa.fr", "opened", None),
    ("no_boundary.eml", "paul@dupont-sa.fr", "opened", None),
    ("unknown_charset.eml", "andre@dupont-sa.fr", "opened", None),
    ("apple_mixed_inline.eml", "lucie@dupont-sa.fr", "opened", None),
    ("auto_reply.eml", "claire.martin@dupont-sa.fr", "quarantined", "auto_submitted"),
    ("precedence_bulk.eml", "news@exemple-lettre.fr", "quarantined", "bulk"),
    ("mailing_list.eml", "marc@exemple-asso.fr", "quarantined", "mailing_list"),
    ("null_sender_bounce.eml", "", "quarantined", "bounce"),
    ("garbage.eml", "robot@exemple-client.fr", "quarantined", "no_sender"),
]


@pytest.mark.parametrize(("name", "envelope_from", "outcome", "reason"), CORPUS_OUTCOMES)
async def test_corpus_over_smtp(
    http: httpx.AsyncClient,
    system,
    pool,
    smtp_port,
    tech,
    name: str,
    envelope_from: str,
    outcome: str,
    reason: str | None,
) -> None:
    raw = corpus(name)
    before = await ledger(http, tech)
    assert await send(smtp_port, raw, envelope_from or "<>") == {}
    after = await ledger(http, tech)
    key = "opened" if outcome == "opened" else "quarantined"
    assert delta(before, after) == {"received": 1, key: 1}
    row = await pool.fetchrow(
        "SELECT m.*, q.reason FROM intake.mail_messages m "
        "LEFT JOIN intake.mail_quarantine q ON q.mail_id = m.id "
        "WHERE m.id = (SELECT mail_id FROM intake.mail_ledger ORDER BY id DESC LIMIT 1)"
    )
    assert (row["outcome"], row["reason"]) == (outcome, reason)
    assert bytes(row["raw"]) in (raw, raw + b"\r\n")  # smtplib ends the last line
    if outcome == "opened":
        d = await dossier(http, system.tokens, str(row["dossier_id"]))
        assert d["subject"] == subject_of(row["subject"])


async def test_an_empty_message_is_kept_in_quarantine(
    http: httpx.AsyncClient, pool, smtp_port, tech
) -> None:
    before = await ledger(http, tech)
    await asyncio.to_thread(_raw_session, smtp_port, b"", "vide@exemple-client.fr")
    assert delta(before, await ledger(http, tech)) == {"received": 1, "quarantined": 1}


def _raw_session(port: int, data: bytes, mail_from: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail(mail_from)
        client.rcpt(SUPPORT)
        return client.data(data)


# --- idempotency ---------------------------------------------------------------------------------


async def test_the_same_mail_twice_makes_one_dossier(
    http: httpx.AsyncClient, pool, smtp_port, tech
) -> None:
    sender = unique()
    raw = build_mail(sender, "Envoyé deux fois")
    before = await ledger(http, tech)
    await send(smtp_port, raw, sender)
    await send(smtp_port, raw, sender)
    # the same message relayed by another MTA, with its own trace headers
    await send(smtp_port, b"Received: from mx2.exemple-client.fr\r\n" + raw, sender)
    assert delta(before, await ledger(http, tech)) == {
        "received": 3,
        "opened": 1,
        "duplicates": 2,
    }
    mail = await stored(pool, mid_of(raw))
    assert mail["duplicates"] == 2
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM intake.requests WHERE requester_email = $1", sender
        )
        == 1
    )


async def test_a_mail_without_message_id_twice_makes_one_dossier(
    http: httpx.AsyncClient, pool, smtp_port, tech
) -> None:
    sender = unique()
    raw = build_mail(sender, "Sans identifiant", message_id=False)
    before = await ledger(http, tech)
    await send(smtp_port, b"Received: from a.relay\r\n" + raw, sender)
    await send(smtp_port, b"Received: from b.relay\r\nDelivered-To: x@manao.eu\r\n" + raw, sender)
    assert delta(before, await ledger(http, tech)) == {
        "received": 2,
        "opened": 1,
        "duplicates": 1,
    }


# --- limits and refusals -------------------------------------------------------------------------


async def test_too_big_is_refused_with_552_and_counted(
    http: httpx.AsyncClient, system, smtp_port, tech
) -> None:
    limit = system.settings.mail_max_bytes
    sender = unique()
    raw = build_mail(
        sender,
        "Trop gros",
        attachments=[("gros.bin", "application/octet-stream", b"\x00" * (limit + 1024))],
    )
    before = await ledger(http, tech)
    # smtplib announces SIZE: refused at MAIL FROM
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        await send(smtp_port, raw, sender)
    assert refused.value.smtp_code == 552
    # a client that does not announce it: refused after DATA
    code, text = await asyncio.to_thread(_raw_session, smtp_port, raw, sender)
    assert code == 552
    assert text.decode() == (
        f"5.3.4 Message trop volumineux : la limite est de {limit // (1024 * 1024)} Mo "
        f"({limit} octets). Message too big: the limit is {limit} bytes."
    )
    # a line longer than any mailer should write (RFC 5321: 1000): refused, counted
    long_line = b"Subject: x\r\n\r\n" + b"y" * (mail_receiver.LINE_LIMIT + 10) + b"\r\n"
    code, text = await asyncio.to_thread(_raw_session, smtp_port, long_line, sender)
    assert (code, text.decode()) == (
        500,
        f"5.5.2 Ligne trop longue (plus de {mail_receiver.LINE_LIMIT} octets).",
    )
    after = await ledger(http, tech)
    assert delta(before, after) == {"rejected": 3}
    assert after["rejected"]["by_reason"]["line_too_long"] >= 1
    reasons = after["rejected"]["by_reason"]
    assert (
        reasons["message_too_big"] - before["rejected"]["by_reason"].get("message_too_big", 0) == 2
    )


async def test_attachments_are_downloads_typed_by_content(
    http: httpx.AsyncClient, system, pool, smtp_port, stack
) -> None:
    raw = corpus("attachments.eml")
    # plus one attachment over the per-attachment limit: counted and named, not kept
    big = build_mail(
        unique(),
        "Pièce énorme",
        attachments=[
            (
                "export.csv",
                "text/csv",
                b"a;b\r\n" * (system.settings.mail_max_attachment_bytes // 5 + 10),
            )
        ],
    )
    await send(smtp_port, raw, "claire.martin@dupont-sa.fr")
    await send(smtp_port, big, "gros@exemple-client.fr")
    staff = auth(system.tokens[Role.technician])
    mail = await stored(pool, "<attachments-1@dupont-sa.fr>")
    got = await http.get(f"/api/v1/mail/messages/{mail['id']}", headers=staff)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["text"] == "Ci-joint les documents."
    atts = {a["filename"]: a for a in body["attachments"]}
    assert sorted(atts) == [
        "Erreur de paie transmise.eml",
        "facture été.pdf",
        "page.html",
        "releve.pdf",
    ]

    pdf = await http.get(atts["facture été.pdf"]["url"], headers=staff)
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-1.4")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == (
        "attachment; filename=\"facture _t_.pdf\"; filename*=UTF-8''facture%20%C3%A9t%C3%A9.pdf"
    )
    assert pdf.headers["x-content-type-options"] == "nosniff"
    assert pdf.headers["content-security-policy"] == "default-src 'none'; sandbox"
    for dangerous in ("releve.pdf", "page.html"):
        served = await http.get(atts[dangerous]["url"], headers=staff)
        assert atts[dangerous]["dangerous"] is True
        assert served.headers["content-type"] == "application/octet-stream"
        assert served.headers["content-disposition"].startswith("attachment;")

    # a customer of the dossier's organisation may download; anonymous may not
    customer = await http.get(
        atts["facture été.pdf"]["url"], headers=auth(system.tokens[Role.customer])
    )
    assert customer.status_code == 200
    assert (await http.get(atts["facture été.pdf"]["url"])).status_code == 401

    # the dossier names the attachments in its description
    assert await pool.fetchval(
        "SELECT description FROM intake.requests WHERE id = $1", mail["dossier_id"]
    ) == (
        "Ci-joint les documents.\n\nPièces jointes : facture été.pdf (1 Ko), releve.pdf "
        "(1 Ko), page.html (1 Ko), Erreur de paie transmise.eml (1 Ko)"
    )

    huge = await stored(pool, mid_of(big))
    [csv] = (await http.get(f"/api/v1/mail/messages/{huge['id']}", headers=staff)).json()[
        "attachments"
    ]
    assert (csv["kept"], csv["dropped"]) == (False, "too_big")
    gone = await http.get(csv["url"], headers=staff)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "attachment_not_kept"
    description = await pool.fetchval(
        "SELECT description FROM intake.requests WHERE id = $1", huge["dossier_id"]
    )
    assert description.endswith(", non conservée : trop volumineuse)")


async def test_a_grant_downloads_its_one_file_without_an_account(
    http: httpx.AsyncClient, system, pool, smtp_port
) -> None:
    """Decision 0019, addendum: the bearer of a grant another service signed for one file gets
    that file (the same download as a signed-in reader's) until the grant expires; a forged or
    expired grant, or one for another file, finds nothing."""
    sender = unique("grant")
    limit = system.settings.mail_max_attachment_bytes
    raw = build_mail(
        sender,
        "Pièces pour le bilan",
        attachments=[
            ("bilan 2024.pdf", "application/pdf", b"%PDF-1.4 bilan"),
            ("page.html", "text/html", b"<html><script>alert(1)</script></html>"),
            ("export.csv", "text/csv", b"a;b\r\n" * (limit // 5 + 10)),
        ],
    )
    await send(smtp_port, raw, sender)
    mail = await stored(pool, mid_of(raw))
    ids = {
        r["filename"]: r["id"]
        for r in await pool.fetch(
            "SELECT id, filename FROM intake.mail_attachments WHERE mail_id = $1", mail["id"]
        )
    }
    key = system.settings.mail_signing_key

    def granted(name: str, grant: str | None = None) -> str:
        grant = grant or grants.issue(grants.mail_attachment(ids[name]), key)
        return f"/api/v1/mail/attachments/{ids[name]}/granted?acces={grant}"

    pdf = await http.get(granted("bilan 2024.pdf"))  # no account
    assert (pdf.status_code, pdf.content) == (200, b"%PDF-1.4 bilan")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == (
        "attachment; filename=\"bilan 2024.pdf\"; filename*=UTF-8''bilan%202024.pdf"
    )
    assert pdf.headers["x-content-type-options"] == "nosniff"
    assert pdf.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert pdf.headers["cache-control"] == "private, no-store"
    html = await http.get(granted("page.html"))
    assert html.status_code == 200
    assert html.headers["content-type"] == "application/octet-stream"
    assert html.headers["content-disposition"].startswith("attachment;")
    gone = await http.get(granted("export.csv"))
    assert (gone.status_code, gone.json()["error"]["code"]) == (410, "attachment_not_kept")

    pdf_grant = grants.issue(grants.mail_attachment(ids["bilan 2024.pdf"]), key)
    expires, signature = pdf_grant.split(".")
    refused = {
        "another file's": granted("page.html", pdf_grant),
        "expired": granted(
            "bilan 2024.pdf",
            grants.issue(grants.mail_attachment(ids["bilan 2024.pdf"]), key, now=time.time() - 301),
        ),
        "another key's": granted(
            "bilan 2024.pdf",
            grants.issue(grants.mail_attachment(ids["bilan 2024.pdf"]), "another-key"),
        ),
        "prolonged": granted("bilan 2024.pdf", f"{int(expires, 16) + 3600:x}.{signature}"),
        "garbage": granted("bilan 2024.pdf", "n-importe-quoi"),
    }
    for why, url in refused.items():
        answer = await http.get(url)
        assert (answer.status_code, answer.json()["error"]["code"]) == (
            404,
            "attachment_not_found",
        ), why
        assert b"PDF" not in answer.content, why
    nothing = uuid.uuid4()
    grant = grants.issue(grants.mail_attachment(nothing), key)
    missing = await http.get(f"/api/v1/mail/attachments/{nothing}/granted?acces={grant}")
    assert missing.status_code == 404
    # a grant is asked for: none is no download, even signed in
    staff = auth(system.tokens[Role.technician])
    without = f"/api/v1/mail/attachments/{ids['bilan 2024.pdf']}/granted"
    assert (await http.get(without)).status_code == 422
    assert (await http.get(without, headers=staff)).status_code == 422


# --- threading -----------------------------------------------------------------------------------


async def _open_by_mail(
    http: httpx.AsyncClient, system, pool, port: int, stack: LocalStack, sender: str
) -> tuple[dict, str, str]:
    """A dossier opened by mail; returns it, the customer's Message-ID and our ack's."""
    raw = build_mail(sender, "Lettrage automatique bloqué", name="Lucie Bernard")
    await send(port, raw, sender)
    mail = await stored(pool, mid_of(raw))
    d = await dossier(http, system.tokens, str(mail["dossier_id"]))
    ack = await first_mail(stack, d["reference"], system.settings.mail_signing_key)
    return d, mid_of(raw), str(ack.message()["Message-ID"])


async def _timeline_has(http: httpx.AsyncClient, system, dossier_id: str, text: str) -> dict | None:
    got = await http.get(
        f"/api/v1/dossiers/{dossier_id}", headers=auth(system.tokens[Role.technician])
    )
    return next(
        (
            e
            for e in got.json()["timeline"]
            if e["kind"] == "customer_message" and e["text"] == text
        ),
        None,
    )


async def test_a_reply_to_our_mail_joins_its_dossier(
    http: httpx.AsyncClient, system, pool, smtp_port, stack, tech
) -> None:
    sender = unique("lucie").replace("exemple-client.fr", DUPONT)
    d, customer_mid, ack_mid = await _open_by_mail(http, system, pool, smtp_port, stack, sender)
    before = await ledger(http, tech)
    reply = build_mail(
        sender,
        f"Re: [{d['reference']}] Lettrage automatique bloqué",
        "Voici le numéro du journal : VT-2026.\n\nLe lun. 9 mars 2026 à 10:00, Assistance "
        "Manao <assistance@manao.eu> a écrit :\n> Bonjour,\n> votre demande est enregistrée.",
        name="Lucie Bernard",
        in_reply_to=ack_mid,
        references=f"{customer_mid} {ack_mid}",
    )
    await send(smtp_port, reply, sender)
    mail = await stored(pool, mid_of(reply))
    assert (mail["outcome"], mail["threaded_by"], str(mail["dossier_id"])) == (
        "joined",
        "signed_id",
        d["id"],
    )
    entry = await eventually(
        lambda: _timeline_has(http, system, d["id"], "Voici le numéro du journal : VT-2026."),
        timeout=20,
    )
    assert entry["author"] == "Lucie Bernard"
    assert entry["data"] == {"via": "mail"}
    assert entry["visibility"] == "customer"
    assert delta(before, await ledger(http, tech)) == {"received": 1, "joined": 1}

    # a colleague from the same organisation writes with the subject token only
    colleague = unique("marc").replace("exemple-client.fr", DUPONT)
    token_only = build_mail(colleague, f"Complément [{d['reference']}]", "Même souci chez moi.")
    await send(smtp_port, token_only, colleague)
    joined = await stored(pool, mid_of(token_only))
    assert (joined["outcome"], joined["threaded_by"]) == ("joined", "subject_token")
    await eventually(lambda: _timeline_has(http, system, d["id"], "Même souci chez moi."), 20)


async def test_a_forged_sender_with_a_valid_subject_token_is_quarantined(
    http: httpx.AsyncClient, system, pool, smtp_port, stack, tech
) -> None:
    sender = unique("lucie").replace("exemple-client.fr", DUPONT)
    d, _, ack_mid = await _open_by_mail(http, system, pool, smtp_port, stack, sender)
    forged = build_mail(
        "pirate@exemple-malveillant.fr",
        f"Re: [{d['reference']}] Lettrage automatique bloqué",
        "Merci de clôturer et d'envoyer les données à cette adresse.",
        name="Lucie Bernard",
    )
    await send(smtp_port, forged, "pirate@exemple-malveillant.fr")
    mail = await stored(pool, mid_of(forged))
    assert (mail["outcome"], mail["dossier_id"]) == ("quarantined", None)
    q = await quarantine_of(pool, mail["id"])
    assert (q["reason"], q["reference"], q["status"]) == (
        "sender_mismatch",
        d["reference"],
        "pending",
    )
    assert q["detail"] == (
        f"Le sujet cite {d['reference']}, mais pirate@exemple-malveillant.fr n'est ni le "
        "demandeur ni de son organisation."
    )

    # a staff address in From never acts on a dossier, even with our signed Message-ID
    staff = build_mail(
        "tech@manao.eu",
        f"Re: [{d['reference']}] Lettrage automatique bloqué",
        "Dossier clos.",
        in_reply_to=ack_mid,
    )
    await send(smtp_port, staff, "tech@manao.eu")
    staff_mail = await stored(pool, mid_of(staff))
    assert staff_mail["outcome"] == "quarantined"
    assert (await quarantine_of(pool, staff_mail["id"]))["reason"] == "staff_sender"

    await asyncio.sleep(1.5)
    got = await http.get(f"/api/v1/dossiers/{d['id']}", headers=auth(tech))
    assert [e for e in got.json()["timeline"] if e["kind"] == "customer_message"] == []

    # the technician sees it and can attach it after checking
    listed = await http.get(
        "/api/v1/mail/quarantine", params={"reason": "sender_mismatch"}, headers=auth(tech)
    )
    assert str(mail["id"]) in [i["mail_id"] for i in listed.json()]
    detail = await http.get(f"/api/v1/mail/quarantine/{mail['id']}", headers=auth(tech))
    assert detail.json()["quarantine"]["reason"] == "sender_mismatch"
    assert detail.json()["text"] == "Merci de clôturer et d'envoyer les données à cette adresse."


async def test_a_reply_while_temporal_is_down_is_delivered_after(
    http: httpx.AsyncClient, system, pool, smtp_port, stack
) -> None:
    """R13: the reply is committed with its outbox row; the relay delivers it later."""
    sender = unique("lucie").replace("exemple-client.fr", DUPONT)
    d, _, ack_mid = await _open_by_mail(http, system, pool, smtp_port, stack, sender)
    await stack.stop_temporal()
    try:
        reply = build_mail(sender, "Re: suite", "Réponse pendant la panne.", in_reply_to=ack_mid)
        assert await send(smtp_port, reply, sender) == {}
        assert (await stored(pool, mid_of(reply)))["outcome"] == "joined"
    finally:
        await stack.start_temporal()
    await eventually(
        lambda: _timeline_has(http, system, d["id"], "Réponse pendant la panne."),
        timeout=90,
        every=0.5,
    )


async def test_a_reply_to_a_finished_dossier_goes_back_to_quarantine(
    http: httpx.AsyncClient, system, pool, smtp_port, stack, tech
) -> None:
    sender = unique("lucie").replace("exemple-client.fr", DUPONT)
    d, _, ack_mid = await _open_by_mail(http, system, pool, smtp_port, stack, sender)
    client = await Client.connect(stack.endpoints.temporal_address)
    await client.get_workflow_handle(d["id"]).terminate("archived for the test")
    before = await ledger(http, tech)
    reply = build_mail(sender, "Re: encore", "Encore une question.", in_reply_to=ack_mid)
    await send(smtp_port, reply, sender)
    mail = await stored(pool, mid_of(reply))

    async def requarantined() -> asyncpg.Record | None:
        q = await quarantine_of(pool, mail["id"])
        return q if q is not None and q["reason"] == "dossier_finished" else None

    q = await eventually(requarantined, timeout=20)
    assert q["reference"] == d["reference"]
    assert delta(before, await ledger(http, tech)) == {"received": 1, "quarantined": 1}


# --- loops and bounces ---------------------------------------------------------------------------


async def test_autoresponder_ping_pong_makes_one_dossier_and_no_automatic_reply(
    http: httpx.AsyncClient, system, pool, smtp_port, stack, tech
) -> None:
    sender = unique("absent").replace("exemple-client.fr", DUPONT)
    d, _, ack_mid = await _open_by_mail(http, system, pool, smtp_port, stack, sender)
    before = await ledger(http, tech)
    # the customer's autoresponder answers our acknowledgement, twice
    for n in range(2):
        ooo = build_mail(
            sender,
            f"Réponse automatique : [{d['reference']}] Lettrage automatique bloqué",
            f"Je suis absente jusqu'au 16 mars ({n}).",
            in_reply_to=ack_mid,
            headers={"Auto-Submitted": "auto-replied"},
        )
        await send(smtp_port, ooo, sender)
        mail = await stored(pool, mid_of(ooo))
        q = await quarantine_of(pool, mail["id"])
        assert (q["reason"], q["reference"]) == ("auto_submitted", d["reference"])
    # and other automatic mail from that address, not threaded
    for headers in ({"Precedence": "junk"}, {"X-Autoreply": "yes"}, {"List-Id": "<l.x.fr>"}):
        await send(smtp_port, build_mail(sender, "Absence", "Absente.", headers=headers), sender)
    assert delta(before, await ledger(http, tech)) == {"received": 5, "quarantined": 5}
    # one dossier, and the only mail it ever got is the acknowledgement
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM intake.requests WHERE requester_email = $1", sender
        )
        == 1
    )
    sent = await mails_to(stack, sender, wait=2.0)
    assert len(sent) == 1
    assert sent[0].message()["Auto-Submitted"] == "auto-replied"
    got = await http.get(f"/api/v1/dossiers/{d['id']}", headers=auth(tech))
    assert [e for e in got.json()["timeline"] if e["kind"] == "customer_message"] == []


def _dsn(address: str, original_mid: str, reporter: str = "mx.dupont-sa.fr") -> bytes:
    text = corpus("dsn_bounce.eml").decode()
    text = text.replace("ancien.salarie@dupont-sa.fr", address)
    text = text.replace("<D-2026-000042.1.aaaaaaaaaaaaaaaa@assistance.manao.eu>", original_mid)
    text = text.replace("<dsn-1@mx.dupont-sa.fr>", f"<dsn-{free_port()}@{reporter}>")
    return text.encode()


async def test_a_bounce_marks_the_address_and_alerts_technicians_once(
    http: httpx.AsyncClient, system, pool, smtp_port, stack, tech
) -> None:
    sender = unique("parti").replace("exemple-client.fr", DUPONT)
    d, _, ack_mid = await _open_by_mail(http, system, pool, smtp_port, stack, sender)
    before = await ledger(http, tech)
    await send(smtp_port, _dsn(sender, ack_mid), "<>")
    alert = await stack.mail.wait_for(
        lambda m: "tech@manao.eu" in m.rcpt_tos and sender in str(m.message()["Subject"]),
        timeout=15,
    )
    message = alert.message()
    assert message["Subject"] == f"Adresse en échec : {sender} [{d['reference']}]"
    assert message["Auto-Submitted"] == "auto-generated"
    assert f"Nos mails à {sender} ne sont plus distribués (statut 5.1.1)." in str(
        message.get_content()
    )
    bounces = await http.get("/api/v1/mail/bounces", headers=auth(tech))
    [mine] = [b for b in bounces.json() if b["address"] == sender]
    assert (mine["status"], mine["reference"], mine["count"]) == ("5.1.1", d["reference"], 1)

    # a second bounce for the same address: counted, no second alert, no reply to anyone
    await send(smtp_port, _dsn(sender, ack_mid, "mx2.dupont-sa.fr"), "<>")
    assert delta(before, await ledger(http, tech)) == {"received": 2, "quarantined": 2}
    alerts = [
        m
        for m in await mails_to(stack, "tech@manao.eu", wait=2.0)
        if sender in str(m.message()["Subject"])
    ]
    assert len(alerts) == 1
    bounces = await http.get("/api/v1/mail/bounces", headers=auth(tech))
    assert [b["count"] for b in bounces.json() if b["address"] == sender] == [2]
    assert len(await mails_to(stack, sender, wait=0)) == 1  # only the acknowledgement


async def test_rate_limit_quarantines_a_runaway_sender(system, pool) -> None:
    settings = system.settings.model_copy(update={"mail_rate_limit_per_hour": 2})
    ingestor = MailIngestor(pool, settings)
    sender = unique("robot")
    outcomes = []
    for n in range(3):
        raw = build_mail(sender, f"Alerte {n}", "Disque plein.")
        outcomes.append(await ingestor.ingest(Delivery(raw, "smtp", sender, (SUPPORT,))))
    assert [(o.status, o.reason) for o in outcomes] == [
        ("opened", None),
        ("opened", None),
        ("quarantined", "rate_limited"),
    ]


async def test_a_burst_with_one_subject_joins_the_first_dossier(system, pool) -> None:
    ingestor = MailIngestor(pool, system.settings)
    sender = unique("script")
    outcomes = []
    for subject in ("Sauvegarde échouée", "Sauvegarde échouée", "Autre sujet"):
        raw = build_mail(sender, subject, "Disque plein.")
        outcomes.append(await ingestor.ingest(Delivery(raw, "smtp", sender, (SUPPORT,))))
    assert [o.status for o in outcomes] == ["opened", "joined", "opened"]
    assert outcomes[1].dossier_id == outcomes[0].dossier_id
    assert outcomes[2].dossier_id != outcomes[0].dossier_id


async def test_an_unmarked_out_of_office_ping_pong_makes_one_dossier_and_one_acknowledgement(
    system, pool, smtp_port, stack
) -> None:
    # no Auto-Submitted, no X-Autoreply, no threading: only the burst rule can stop it
    sender = unique("absente")
    for n in range(20):
        text = f"Je suis absente jusqu'au 5 décembre (envoi {n})."
        await send(smtp_port, build_mail(sender, "Absente du bureau", text), sender)

    requests = await pool.fetch("SELECT id FROM intake.requests WHERE requester_email = $1", sender)
    assert len(requests) == 1
    outcomes = await pool.fetch(
        "SELECT outcome, dossier_id FROM intake.mail_messages WHERE from_address = $1", sender
    )
    assert sorted(r["outcome"] for r in outcomes) == ["joined"] * 19 + ["opened"]
    assert {r["dossier_id"] for r in outcomes} == {requests[0]["id"]}
    await stack.mail.wait_for(lambda m: sender in m.rcpt_tos, timeout=30)
    sent = await mails_to(stack, sender, wait=3.0)
    assert len(sent) == 1
    assert sent[0].message()["Auto-Submitted"] == "auto-replied"


# --- failures: storage, a receiver killed mid-message --------------------------------------------


async def test_storage_down_answers_451_so_the_mta_retries(system, tech) -> None:
    broken = await db.create_pool(system.settings.database_url, 1)
    await broken.close()
    receiver = mail_receiver.MailReceiver(
        MailIngestor(broken, system.settings), "127.0.0.1", free_port()
    )
    serving = asyncio.create_task(receiver.serve())
    await eventually(lambda: _listening(receiver.port), timeout=5)
    try:
        sender = unique()
        code, text = await asyncio.to_thread(
            _raw_session, receiver.port, build_mail(sender, "Panne"), sender
        )
        assert code == 451
        assert text.decode() == (
            "4.3.0 Stockage momentanement indisponible, reessayez plus tard "
            "(storage unavailable, try again later)."
        )
        with pytest.raises(StorageUnavailable):
            await MailIngestor(broken, system.settings).ingest(
                Delivery(build_mail(sender), "smtp", sender)
            )
    finally:
        await receiver.stop()
        await serving


async def test_an_unexpected_error_keeps_the_raw_mail_in_quarantine(system, pool) -> None:
    class Broken(MailIngestor):
        async def decide(self, *args: Any) -> Any:
            raise RuntimeError("a bug in the rules")

    sender = unique()
    raw = build_mail(sender, "Cas imprévu")
    outcome = await Broken(pool, system.settings).ingest(Delivery(raw, "smtp", sender))
    assert (outcome.status, outcome.reason) == ("quarantined", "internal_error")
    mail = await stored(pool, mid_of(raw))
    assert bytes(mail["raw"]) == raw
    assert (await quarantine_of(pool, mail["id"]))["reason"] == "internal_error"
    # the MTA's retry, once the bug is fixed, is the same message
    again = await MailIngestor(pool, system.settings).ingest(Delivery(raw, "smtp", sender))
    assert (again.status, again.mail_id) == ("duplicate", outcome.mail_id)


def _start_then_abandon(port: int, first_half: bytes, mail_from: str) -> socket.socket:
    """An MTA that has sent half of a message when the receiver goes away."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    reader = sock.makefile("rb")
    reader.readline()  # 220
    for command in (
        b"EHLO mta.exemple-client.fr",
        f"MAIL FROM:<{mail_from}>".encode(),
        f"RCPT TO:<{SUPPORT}>".encode(),
        b"DATA",
    ):
        sock.sendall(command + b"\r\n")
        line = reader.readline()
        while line[3:4] == b"-":
            line = reader.readline()
    assert line.startswith(b"354"), line
    sock.sendall(first_half)
    return sock


def _dropped(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    finally:
        sock.close()


async def test_receiver_killed_mid_message_then_the_retry_delivers_it_once(
    http: httpx.AsyncClient, system, pool, smtp_port, tech
) -> None:
    sender = unique()
    raw = build_mail(sender, "Coupure en plein envoi", "Texte " * 2000)
    before = await ledger(http, tech)
    sock = await asyncio.to_thread(_start_then_abandon, smtp_port, raw[: len(raw) // 2], sender)
    receiver = mail_receiver.listening(smtp_port)
    assert receiver is not None
    await receiver.stop()  # the receiver dies with half a message in flight
    assert await asyncio.to_thread(_dropped, sock)  # the MTA sees the connection drop
    assert await mail_by_message_id(pool, mid_of(raw)) is None  # nothing half-stored

    # the supervisor restarts the receiver; the MTA retries until it is back
    await eventually(lambda: _listening(smtp_port), timeout=15)
    assert await send(smtp_port, raw, sender) == {}
    # the 250 of a stored message is lost (connection cut after the final dot): retried again
    cut = await asyncio.to_thread(_start_then_abandon, smtp_port, raw + b".\r\n", sender)
    cut.close()
    await send(smtp_port, raw, sender)
    changes = delta(before, await ledger(http, tech))
    assert changes["opened"] == 1
    assert changes["received"] == 1 + changes["duplicates"]
    assert changes["duplicates"] in (1, 2)  # 2 if the cut delivery was stored before the cut
    assert set(changes) == {"received", "opened", "duplicates"}
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM intake.requests WHERE requester_email = $1", sender
        )
        == 1
    )


async def test_lmtp_answers_once_per_recipient(http: httpx.AsyncClient, system, pool, tech) -> None:
    port = system.settings.mail_lmtp_port
    await eventually(lambda: _listening(port), timeout=10)
    sender = unique()
    raw = build_mail(sender, "Par LMTP")
    before = await ledger(http, tech)

    def session() -> list[bytes]:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        reader = sock.makefile("rb")
        replies = [reader.readline()]
        for command in (
            b"LHLO mta.manao.eu",
            f"MAIL FROM:<{sender}>".encode(),
            f"RCPT TO:<{SUPPORT}>".encode(),
            b"RCPT TO:<support@manao.eu>",
            b"DATA",
        ):
            sock.sendall(command + b"\r\n")
            line = reader.readline()
            while line[3:4] == b"-":
                line = reader.readline()
            replies.append(line)
        sock.sendall(raw + b".\r\n")
        replies += [reader.readline(), reader.readline()]
        sock.sendall(b"QUIT\r\n")
        sock.close()
        return replies

    replies = await asyncio.to_thread(session)
    assert replies[-3].startswith(b"354")
    assert [r[:3] for r in replies[-2:]] == [b"250", b"250"]
    mail = await stored(pool, mid_of(raw))
    assert (mail["source"], list(mail["envelope_to"])) == ("lmtp", [SUPPORT, "support@manao.eu"])
    assert delta(before, await ledger(http, tech)) == {"received": 1, "opened": 1}


# --- quarantine decisions and the ledger ---------------------------------------------------------


async def test_release_from_quarantine(
    http: httpx.AsyncClient, system, pool, smtp_port, stack, tech
) -> None:
    sender = unique("lucie").replace("exemple-client.fr", DUPONT)
    d, _, _ = await _open_by_mail(http, system, pool, smtp_port, stack, sender)
    # written from a personal address: quarantined, then attached by a technician
    personal = unique("lucie.perso").replace("exemple-client.fr", "exemple-perso.fr")
    forwarded = build_mail(personal, f"[{d['reference']}] depuis chez moi", "Depuis chez moi.")
    await send(smtp_port, forwarded, personal)
    mail = await stored(pool, mid_of(forwarded))
    before = await ledger(http, tech)
    staff = auth(tech)
    url = f"/api/v1/mail/quarantine/{mail['id']}"
    r = await http.post(
        f"{url}/release", json={"action": "attach", "reference": d["reference"]}, headers=staff
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "mail_id": str(mail["id"]),
        "status": "released",
        "action": "attached",
        "dossier_id": d["id"],
        "reference": d["reference"],
    }
    await eventually(lambda: _timeline_has(http, system, d["id"], "Depuis chez moi."), 20)
    again = await http.post(
        f"{url}/release", json={"action": "attach", "reference": "x"}, headers=staff
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_resolved"

    # a newsletter: released into a new dossier by a technician's decision
    bulk = build_mail(
        unique("lettre"), "Offre", "Une vraie question cachée.", headers={"Precedence": "bulk"}
    )
    await send(smtp_port, bulk, "lettre@exemple-lettre.fr")
    bulk_mail = await stored(pool, mid_of(bulk))
    opened = await http.post(
        f"/api/v1/mail/quarantine/{bulk_mail['id']}/release",
        json={"action": "open", "software": "manao-paie", "subject": "Question cachée"},
        headers=staff,
    )
    assert opened.status_code == 200, opened.text
    new = await dossier(http, system.tokens, opened.json()["dossier_id"])
    assert (new["channel"], new["software"], new["subject"]) == (
        "mail",
        "manao-paie",
        "Question cachée",
    )
    # spam: discarded
    spam = build_mail(unique("spam"), "Gagnez", "!!!", headers={"Precedence": "junk"})
    await send(smtp_port, spam, "spam@exemple-spam.fr")
    spam_mail = await stored(pool, mid_of(spam))
    gone = await http.post(
        f"/api/v1/mail/quarantine/{spam_mail['id']}/discard",
        json={"reason": "Publicité"},
        headers=staff,
    )
    assert gone.json() == {
        "mail_id": str(spam_mail["id"]),
        "status": "discarded",
        "action": "discarded",
        "dossier_id": None,
        "reference": None,
    }
    after = await ledger(http, tech)
    assert delta(before, after) == {"received": 2, "quarantined": 2}
    moved = {
        k: after["quarantined"][k] - before["quarantined"][k]
        for k in ("pending", "released", "discarded")
    }
    assert moved == {"pending": -1, "released": 2, "discarded": 1}
    # customers and anonymous callers see no quarantine
    assert (
        await http.get("/api/v1/mail/quarantine", headers=auth(system.tokens[Role.customer]))
    ).status_code == 403


async def test_the_ledger_always_adds_up(http: httpx.AsyncClient, pool, tech) -> None:
    book = await ledger(http, tech)
    c = counts(book)
    assert c["received"] == c["opened"] + c["joined"] + c["quarantined"] + c["duplicates"]
    assert book["ingested"]["total"] == c["opened"] + c["joined"]
    assert book["stored_messages"] == c["opened"] + c["joined"] + c["quarantined"]
    q = book["quarantined"]
    assert q["pending"] + q["released"] + q["discarded"] == q["total"]
    assert sum(q["by_reason"].values()) == q["total"]
    assert sum(book["rejected"]["by_reason"].values()) == c["rejected"]
    assert book["balanced"] is True
    # the same figures straight from the tables
    assert c["received"] == await pool.fetchval(
        "SELECT count(*) FROM intake.mail_ledger WHERE entry <> 'rejected'"
    )
    assert c["duplicates"] == await pool.fetchval(
        "SELECT coalesce(sum(duplicates), 0) FROM intake.mail_messages"
    )
    # a period with nothing in it
    empty = await http.get(
        "/api/v1/mail/ledger",
        params={"since": "2000-01-01T00:00:00+01:00", "until": "2000-01-02T00:00:00+01:00"},
        headers=auth(tech),
    )
    assert counts(empty.json()) == dict.fromkeys(c, 0)
    assert empty.json()["balanced"] is True


async def test_only_technicians_read_the_ledger(http: httpx.AsyncClient, system) -> None:
    assert (await http.get("/api/v1/mail/ledger")).status_code == 401
    customer = await http.get("/api/v1/mail/ledger", headers=auth(system.tokens[Role.customer]))
    assert customer.status_code == 403


async def test_other_organisation_cannot_download(
    http: httpx.AsyncClient, system, pool, smtp_port
) -> None:
    org = await directory.create_organisation(pool, "Autre SARL", ["autre-sarl.fr"])
    user = await directory.create_user(pool, "nina@autre-sarl.fr", "Nina", Role.customer, org)
    token = await directory.issue_token(pool, user, "test")
    sender = unique("doc").replace("exemple-client.fr", DUPONT)
    raw = build_mail(sender, "Doc", attachments=[("n.pdf", "application/pdf", b"%PDF-1.4 x")])
    await send(smtp_port, raw, sender)
    mail = await stored(pool, mid_of(raw))
    att = await pool.fetchval(
        "SELECT id FROM intake.mail_attachments WHERE mail_id = $1", mail["id"]
    )
    r = await http.get(f"/api/v1/mail/attachments/{att}", headers=auth(token))
    assert r.status_code == 403


async def test_no_5xx_for_bad_input(http: httpx.AsyncClient, system, tech) -> None:
    staff = auth(tech)
    some = "00000000-0000-0000-0000-000000000000"
    cases = [
        http.get("/api/v1/mail/quarantine", params={"reason": "a\x00b"}, headers=staff),
        http.delete("/api/v1/mail/bounces/a%00b", headers=staff),
        http.post(
            f"/api/v1/mail/quarantine/{some}/discard", json={"reason": "x\x00"}, headers=staff
        ),
        http.post(
            f"/api/v1/mail/quarantine/{some}/release",
            json={"action": "open", "requester": {"email": "a@exemple.fr", "name": "A\x00"}},
            headers=staff,
        ),
        http.get("/api/v1/mail/ledger", params={"since": "hier"}, headers=staff),
        http.get("/api/v1/mail/messages/pas-un-id", headers=staff),
    ]
    for answer in cases:
        r = await answer
        assert r.status_code == 422, r.text
    missing = await http.post(
        f"/api/v1/mail/quarantine/{some}/release", json={"action": "open"}, headers=staff
    )
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_quarantined")
    assert (await http.get(f"/api/v1/mail/attachments/{some}", headers=staff)).status_code == 404
