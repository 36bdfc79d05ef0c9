"""Outbound mail of the dossier lifecycle (R2, R3, R10): templates, headers, idempotent sending.

Rendering is checked on exact headers; sending goes over real SMTP to the stack's mail catcher.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from email.message import EmailMessage
from html import escape
from typing import Any

import asyncpg
import httpx
import pytest
from aiosmtplib import SMTPException
from fastapi import FastAPI

from assistance import db, demo, directory
from assistance.bus import Bus
from assistance.directory import Role
from assistance.mail import verify_message_id
from assistance.settings import Settings
from deploy.local import devmail
from deploy.local.stack import CaughtMail, LocalStack, free_port
from services.dossier.activities import DossierActivities
from services.dossier.mail import CUSTOMER_TEMPLATES, UnknownTemplate, render, render_notice
from tests.helpers import auth, deposit_body
from workflows.types import MailOrder, StaffNotice

SETTINGS = Settings(
    mail_from="assistance@manao.eu",
    support_address="support@manao.eu",
    mail_domain="assistance.manao.eu",
    mail_signing_key="test-signing-key",
    public_url="https://assistance.manao.eu",
)
REFERENCE = "D-2026-000042"
THREAD = ["<CAF1x@mail.dupont-sa.fr>", f"<{REFERENCE}.1.aaaaaaaaaaaaaaaa@assistance.manao.eu>"]
CONTEXT = {
    "reference": REFERENCE,
    "subject": "Export FEC impossible",
    "requester_name": "Claire Martin",
    "first_response_due": "2026-11-30T13:00:00Z",
    "text": "Dans Paramètres > Exports, cochez « Écritures validées » puis relancez l'export.",
    "resolution": "Le paramètre d'export était désactivé ; réactivé avec la cliente.",
    "link": "https://partage.manao.eu/salle/D-2026-000042",
    "version": "5.2.1",
    "software": "manao-compta",
    "reason": "Déjà couvert par le module de rapprochement.",
    "specification": "Export FEC par établissement.",
    "appointment": {"starts_at": "2026-12-01T08:00:00+00:00", "trainer_name": "Fanny Formatrice"},
    "workaround": "Exporter par trimestre.",
    "public_url": "https://assistance.manao.eu",
}
AUTOMATIC = {"acknowledgement", "customer_reminder"}
# RFC 3834 (issue 14): what no person wrote says so; in answer to the customer's mail, replied
AUTO_SUBMITTED = {
    "acknowledgement": "auto-replied",
    "reopened": "auto-replied",
    "customer_reminder": "auto-generated",
    "closure": "auto-generated",
    "fix_released": "auto-generated",
    "bug_reported": "auto-generated",
    "evolution_recorded": "auto-generated",
    "evolution_accepted": "auto-generated",
    "evolution_rejected": "auto-generated",
    "evolution_released": "auto-generated",
    "training_booked": "auto-generated",
}


def order(template: str, **overrides: object) -> MailOrder:
    base = MailOrder(
        dossier_id=str(uuid.uuid4()),
        reference=REFERENCE,
        step=7,
        template=template,
        to="claire.martin@dupont-sa.fr",
        context=dict(CONTEXT),
        thread=list(THREAD),
        auto=template in AUTOMATIC,
    )
    return replace(base, **overrides)


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def html_of(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


# --- rendering --------------------------------------------------------------------------------


@pytest.mark.parametrize("template", sorted(CUSTOMER_TEMPLATES))
def test_every_template_renders_with_threading_headers(template: str) -> None:
    mail = order(template)
    message = render(mail, SETTINGS)

    assert message["From"] == "Assistance Manao <assistance@manao.eu>"
    assert message["To"] == "claire.martin@dupont-sa.fr"
    assert message["Reply-To"] == "support@manao.eu"
    assert message["Subject"] == "[D-2026-000042] Export FEC impossible"
    assert message["Content-Language"] == "fr"
    assert verify_message_id(message["Message-ID"], "test-signing-key") == (REFERENCE, 7)
    assert message["Message-ID"].endswith("@assistance.manao.eu>")
    assert message["In-Reply-To"] == THREAD[-1]
    assert message["References"] == " ".join(THREAD)
    assert message["Date"] is not None
    if template in AUTO_SUBMITTED:
        assert message["Auto-Submitted"] == AUTO_SUBMITTED[template]
    else:  # written by a person: a response, a workaround, a resolution…
        assert "Auto-Submitted" not in message
    text = text_of(message)
    assert text.startswith("Bonjour Claire Martin,\n\n")
    assert "Dossier D-2026-000042 : Export FEC impossible" in text
    assert "L'équipe Assistance Manao" in text
    for leftover in ("None", "Undefined", "{{", "{%"):
        assert leftover not in text
    assert "<p>Bonjour Claire Martin,</p>" in html_of(message)


@pytest.mark.parametrize("template", sorted(CUSTOMER_TEMPLATES))
def test_every_template_survives_an_empty_context(template: str) -> None:
    message = render(order(template, context={}, thread=[]), SETTINGS)

    text = text_of(message)
    assert text.startswith("Bonjour,\n\n")
    assert "Dossier D-2026-000042\n" in text
    for leftover in ("None", "Undefined", "{{"):
        assert leftover not in text
    assert message["Subject"] == "[D-2026-000042]"
    assert "In-Reply-To" not in message
    assert "References" not in message


def test_acknowledgement_states_the_committed_time_in_paris_in_french() -> None:
    # R3: 13:00 UTC on 30 November is 14:00 in Paris (winter time).
    text = text_of(render(order("acknowledgement"), SETTINGS))
    assert (
        "Un technicien vous répondra au plus tard le lundi 30 novembre 2026 à 14:00 "
        "(heure de Paris)." in text
    )
    assert "référence D-2026-000042" in text


def test_summer_time_and_first_of_the_month() -> None:
    context = {**CONTEXT, "first_response_due": "2026-07-01T07:05:00+00:00"}
    text = text_of(render(order("acknowledgement", context=context), SETTINGS))
    assert "le mercredi 1er juillet 2026 à 09:05 (heure de Paris)" in text


def test_training_booked_gives_the_appointment_and_the_trainer() -> None:
    text = text_of(render(order("training_booked"), SETTINGS))
    assert "une formation avec Fanny Formatrice." in text
    assert "Date : le mardi 1er décembre 2026 à 09:00 (heure de Paris)." in text


def test_the_author_of_a_response_signs_it() -> None:
    context = {**CONTEXT, "author": "Thomas Technicien"}
    text = text_of(render(order("response", context=context), SETTINGS))
    assert "Cordialement,\nThomas Technicien\nL'équipe Assistance Manao\n" in text


def test_fix_released_names_the_version() -> None:
    text = text_of(render(order("fix_released"), SETTINGS))
    assert "disponible dans la version 5.2.1 de manao-compta." in text


def test_closure_carries_the_resolution_and_resolved_asks_for_confirmation() -> None:
    closure = text_of(render(order("closure"), SETTINGS))
    assert "Résolution :\nLe paramètre d'export était désactivé ; réactivé avec la cliente." in (
        closure
    )
    resolved = text_of(render(order("resolved"), SETTINGS))
    assert "Pouvez-vous nous confirmer que tout fonctionne ?" in resolved


def test_customer_text_is_escaped_in_html_and_kept_in_text() -> None:
    context = {**CONTEXT, "text": "Essayez <script>alert(1)</script> & relancez"}
    message = render(order("response", context=context), SETTINGS)
    assert "Essayez <script>alert(1)</script> & relancez" in text_of(message)
    html = html_of(message)
    assert "<script>" not in html
    assert "Essayez &lt;script&gt;alert(1)&lt;/script&gt; &amp; relancez" in html


def test_a_subject_cannot_inject_headers() -> None:
    context = {**CONTEXT, "subject": "Export\r\nBcc: everyone@example.com"}
    message = render(order("response", context=context), SETTINGS)
    assert message["Subject"] == "[D-2026-000042] Export Bcc: everyone@example.com"
    assert "Bcc" not in message


def test_the_subject_token_is_not_repeated() -> None:
    context = {**CONTEXT, "subject": "Re: [D-2026-000042] Export FEC"}
    assert render(order("response", context=context), SETTINGS)["Subject"] == (
        "Re: [D-2026-000042] Export FEC"
    )


def test_an_unknown_template_is_refused() -> None:
    with pytest.raises(UnknownTemplate):
        render(order("no_such_template"), SETTINGS)


def test_staff_notice_is_automatic_and_not_a_dossier_reply_id() -> None:
    notice = StaffNotice(
        dossier_id=str(uuid.uuid4()),
        reference=REFERENCE,
        step=9,
        audience="team",
        kind="first_response_breach",
        subject="Première réponse en retard",
        text="Le délai était le lundi 30 novembre 2026 à 14:00.",
    )
    message = render_notice(notice, "tech@manao.eu", SETTINGS)
    assert message["Subject"] == "[D-2026-000042] Première réponse en retard"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["To"] == "tech@manao.eu"
    # A technician answering a notice must not be taken for the customer (R1).
    assert verify_message_id(message["Message-ID"], "test-signing-key") is None
    text = text_of(message)
    assert text.startswith("Délai de première réponse dépassé (engagement 1)\n\nDossier D-2026")
    assert "Le délai était le lundi 30 novembre 2026 à 14:00." in text


# --- sending over SMTP ------------------------------------------------------------------------


@pytest.fixture
async def pool(system) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(system.settings.database_url, 4)
    try:
        yield pool
    finally:
        await pool.close()


def activities_for(settings: Settings, pool: asyncpg.Pool) -> DossierActivities:
    """The activities called directly, without Temporal (the bus is not used by mail)."""
    return DossierActivities(Bus(settings.nats_url), pool, settings)


@pytest.fixture
def activities(system, pool: asyncpg.Pool) -> DossierActivities:
    return activities_for(system.settings, pool)


def caught_with(stack: LocalStack, header: str, value: str) -> list[CaughtMail]:
    return [m for m in stack.mail.messages if m.message()[header] == value]


async def test_a_mail_is_sent_once_per_dossier_and_step(
    activities: DossierActivities, stack: LocalStack, pool: asyncpg.Pool, system
) -> None:
    stack.mail.clear()
    mail = order("acknowledgement", reference="D-2026-900001", thread=[])

    first = await activities.send_mail(mail)
    second = await activities.send_mail(mail)

    assert first == second
    assert verify_message_id(first, system.settings.mail_signing_key) == ("D-2026-900001", 7)
    caught = caught_with(stack, "Message-ID", first)
    assert len(caught) == 1
    assert caught[0].rcpt_tos == ["claire.martin@dupont-sa.fr"]
    assert caught[0].message()["Auto-Submitted"] == "auto-replied"
    row = await pool.fetchrow(
        "SELECT dossier_id, step, template, recipient, subject FROM dossier.outbound_mail "
        "WHERE message_id = $1",
        first,
    )
    assert dict(row) == {
        "dossier_id": uuid.UUID(mail.dossier_id),
        "step": 7,
        "template": "acknowledgement",
        "recipient": "claire.martin@dupont-sa.fr",
        "subject": "[D-2026-900001] Export FEC impossible",
    }


async def test_concurrent_attempts_send_once(
    activities: DossierActivities, stack: LocalStack
) -> None:
    stack.mail.clear()
    mail = order("response", reference="D-2026-900002")

    ids = await asyncio.gather(*(activities.send_mail(mail) for _ in range(3)))

    assert len(set(ids)) == 1
    assert len(caught_with(stack, "Message-ID", ids[0])) == 1


async def test_the_next_step_is_a_new_mail_threaded_on_the_previous(
    activities: DossierActivities, stack: LocalStack
) -> None:
    stack.mail.clear()
    first = order("acknowledgement", reference="D-2026-900003", step=1, thread=[])
    ack = await activities.send_mail(first)
    answer = await activities.send_mail(
        replace(first, step=2, template="response", thread=[ack], auto=False)
    )

    assert answer != ack
    [mail] = caught_with(stack, "Message-ID", answer)
    assert mail.message()["In-Reply-To"] == ack
    assert mail.message()["References"] == ack
    assert "Auto-Submitted" not in mail.message()


async def test_an_smtp_failure_raises_and_the_retry_sends(
    system, pool: asyncpg.Pool, stack: LocalStack
) -> None:
    stack.mail.clear()
    down = system.settings.model_copy(update={"smtp_port": free_port()})
    mail = order("response", reference="D-2026-900004")

    with pytest.raises(SMTPException):
        await activities_for(down, pool).send_mail(mail)
    mid = await activities_for(system.settings, pool).send_mail(mail)

    assert len(caught_with(stack, "Message-ID", mid)) == 1


async def test_a_tampered_message_id_from_a_sent_mail_fails(
    activities: DossierActivities, stack: LocalStack, system
) -> None:
    mid = await activities.send_mail(order("response", reference="D-2026-900005", step=3))
    [mail] = caught_with(stack, "Message-ID", mid)
    key = system.settings.mail_signing_key

    assert verify_message_id(mail.message()["Message-ID"], key) == ("D-2026-900005", 3)
    assert verify_message_id(mid.replace(".3.", ".4."), key) is None
    assert verify_message_id(mid.replace("D-2026-900005", "D-2026-900006"), key) is None


def notice(audience: str, **overrides: object) -> StaffNotice:
    base = StaffNotice(
        dossier_id=str(uuid.uuid4()),
        reference="D-2026-900100",
        step=4,
        audience=audience,
        kind="reminder",
        subject="Dossier sans activité depuis 4 heures ouvrées",
        text="Aucune action depuis la prise en charge.",
    )
    return replace(base, **overrides)


async def test_team_notice_reaches_every_technician_once(
    activities: DossierActivities, stack: LocalStack, pool: asyncpg.Pool
) -> None:
    stack.mail.clear()
    technicians = sorted(e for e, _, role in demo.USERS if role is Role.technician)
    assert await directory.emails_with_role(pool, Role.technician) == technicians
    warning = notice("team", kind="first_response_warning", subject="Première réponse à 14:00")

    first = await activities.notify_staff(warning)
    second = await activities.notify_staff(warning)

    assert first == second == technicians
    caught = [m for m in stack.mail.messages if "[D-2026-900100]" in m.message()["Subject"]]
    assert sorted(r for m in caught for r in m.rcpt_tos) == technicians
    assert all(m.message()["Auto-Submitted"] == "auto-generated" for m in caught)
    row = await pool.fetchrow(
        "SELECT kind, audience, recipients, subject, text FROM dossier.staff_notices "
        "WHERE dossier_id = $1 AND step = 4",
        uuid.UUID(warning.dossier_id),
    )
    assert dict(row) == {
        "kind": "first_response_warning",
        "audience": "team",
        "recipients": technicians,
        "subject": "Première réponse à 14:00",
        "text": "Aucune action depuis la prise en charge.",
    }


async def test_notice_audiences(activities: DossierActivities, pool: asyncpg.Pool) -> None:
    tech_id = await pool.fetchval("SELECT id FROM directory.users WHERE email = 'tech@manao.eu'")
    technicians = await directory.emails_with_role(pool, Role.technician)

    assert await activities.notify_staff(notice("technician", technician_id=str(tech_id))) == [
        "tech@manao.eu"
    ]
    # An unknown technician: the whole team hears of it rather than nobody (R2).
    assert (
        await activities.notify_staff(notice("technician", technician_id=str(uuid.uuid4())))
        == technicians
    )
    assert await activities.notify_staff(notice("admins", kind="escalation")) == ["admin@manao.eu"]
    assert await activities.notify_staff(notice("training_lead", kind="training_no_slot")) == [
        "formation@manao.eu"
    ]


# --- the dev page of caught mails (make run) ---------------------------------------------------


async def test_the_dev_page_lists_caught_mails_escaped(
    activities: DossierActivities, stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.mail.clear()
    context = {**CONTEXT, "subject": "Export <b>FEC</b>"}
    mid = await activities.send_mail(order("response", reference="D-2026-900200", context=context))
    app = FastAPI()
    with pytest.raises(RuntimeError):  # issue 13: never outside `make run`
        devmail.router(stack.mail)
    monkeypatch.setenv("DEV_PAGES", "1")
    app.include_router(devmail.router(stack.mail))

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://dev"
    ) as client:
        listing = await client.get("/dev/mails")
        detail = await client.get("/dev/mails/1")
        as_json = await client.get("/dev/mails.json")
        missing = await client.get("/dev/mails/2")

    assert listing.status_code == 200
    assert "[D-2026-900200] Export &lt;b&gt;FEC&lt;/b&gt;" in listing.text
    assert "<b>FEC</b>" not in listing.text
    assert "Assistance Manao &lt;assistance@manao.eu&gt;" in listing.text
    assert detail.status_code == 200
    assert f"<td>{escape(mid)}</td>" in detail.text
    [summary] = as_json.json()
    assert summary["n"] == 1
    assert summary["message_id"] == mid
    assert summary["subject"] == "[D-2026-900200] Export <b>FEC</b>"
    assert summary["rcpt_tos"] == ["claire.martin@dupont-sa.fr"]
    assert "Dans Paramètres > Exports" in summary["text"]
    assert missing.status_code == 404


def test_the_acknowledgement_of_a_phone_call_says_it_was_answered() -> None:
    phone = render(order("acknowledgement", context={**CONTEXT, "channel": "phone"}), SETTINGS)
    web = render(order("acknowledgement", context={**CONTEXT, "channel": "web"}), SETTINGS)

    said = text_of(phone)
    assert "Suite à votre appel au sujet de « Export FEC impossible », nous avons ouvert" in said
    assert "technicien qui vous a répondu" in said
    assert "vous répondra" not in said and "nous nous engageons" not in said
    assert "Un technicien vous répondra au plus tard le" in text_of(web)
    assert phone["Auto-Submitted"] == "auto-replied"


async def test_a_logged_call_is_acknowledged_as_answered(
    system: Any, stack: LocalStack, http: httpx.AsyncClient
) -> None:
    sender = f"appel-{uuid.uuid4().hex[:8]}@dupont-sa.fr"
    call = deposit_body(caller_phone="+33 1 23 45 67 89", subject="Appel : clôture annuelle")
    call["requester"] = {"email": sender, "name": "Claire Martin"}
    logged = await http.post(
        "/api/v1/calls", json=call, headers=auth(system.tokens[Role.technician])
    )
    assert logged.status_code == 201, logged.text

    mail = await stack.mail.wait_for(lambda m: sender in m.rcpt_tos, timeout=30)

    text = text_of(mail.message())
    assert "Suite à votre appel au sujet de « Appel : clôture annuelle »" in text
    assert "vous répondra" not in text
    assert mail.message()["Auto-Submitted"] == "auto-replied"


async def test_one_automatic_answer_a_day_per_sender_and_dossier(
    activities: DossierActivities, stack: LocalStack
) -> None:
    stack.mail.clear()
    dossier, other = str(uuid.uuid4()), str(uuid.uuid4())
    ack = order("acknowledgement", dossier_id=dossier, reference="D-2026-900201", thread=[])
    reopened = order("reopened", dossier_id=dossier, reference="D-2026-900201", step=8)
    elsewhere = order("reopened", dossier_id=other, reference="D-2026-900202", step=8)

    first = await activities.send_mail(ack)
    again = await activities.send_mail(ack)  # a retry of the same mail is not a second answer
    held = await activities.send_mail(reopened)
    sent = await activities.send_mail(elsewhere)

    assert first == again
    assert len(caught_with(stack, "Message-ID", first)) == 1
    assert caught_with(stack, "Message-ID", held) == []  # an out-of-office ping-pong ends here
    assert len(caught_with(stack, "Message-ID", sent)) == 1


@pytest.mark.parametrize("template", sorted(CUSTOMER_TEMPLATES))
def test_no_code_or_english_reaches_the_customer(template: str) -> None:
    from tests.services.site.test_no_codes import leftovers

    context = {**CONTEXT, "software_name": "Manao Compta"}
    message = render(order(template, context=context), SETTINGS)

    assert leftovers(f"<p>{escape(text_of(message))}</p>") == []
    assert leftovers(f"<p>{escape(str(message['Subject']))}</p>") == []


async def test_a_mail_names_the_software(activities: DossierActivities, stack: LocalStack) -> None:
    mail = order("fix_released", reference="D-2026-900301", step=11)

    sent = await activities.send_mail(mail)

    [caught] = caught_with(stack, "Message-ID", sent)
    text = text_of(caught.message())
    assert "dans la version 5.2.1 de Manao Compta." in text
    assert "manao-compta" not in text
