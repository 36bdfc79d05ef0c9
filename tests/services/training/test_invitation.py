"""ICS invitations and the brief, pure: parsed back with icalendar, read as French text."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from icalendar import Calendar

from assistance.settings import Settings
from services.training import brief
from services.training.invitation import Invitation, Person, ics, message, uid
from services.training.models import HandOverIn

PARIS = ZoneInfo("Europe/Paris")
SETTINGS = Settings(mail_from="assistance@manao.eu", mail_domain="assistance.manao.eu")
APPOINTMENT = uuid.UUID("0b8f2a52-4f7e-4bb0-9d3c-7a1f3c2f0c11")
CLAIRE = Person("claire.martin@dupont-sa.fr", "Claire Martin")
FANNY = Person("fanny@manao.eu", "Fanny Formatrice")
START = datetime(2026, 3, 30, 9, tzinfo=PARIS)  # the Monday after the spring DST change
INVITE = Invitation(
    appointment_id=APPOINTMENT,
    reference="D-2026-000042",
    software="manao-compta",
    sequence=0,
    starts_at=START,
    ends_at=START + timedelta(hours=1),
    link="https://partage.manao.eu/salle/Zx9",
    customer=CLAIRE,
    trainer=FANNY,
    brief_text="Fiche de préparation — dossier D-2026-000042\nBesoin : lettrage automatique\n",
)


def parse(data: bytes) -> tuple[Calendar, dict[str, object]]:
    cal = Calendar.from_ical(data)
    event = cal.walk("VEVENT")[0]
    return cal, event


def test_a_booking_is_a_request_in_paris_time() -> None:
    cal, event = parse(ics(INVITE, SETTINGS, for_trainer=False))
    assert cal["METHOD"] == "REQUEST"
    assert event["UID"] == f"training-{APPOINTMENT}@assistance.manao.eu"
    assert event["UID"] == uid(APPOINTMENT, SETTINGS.mail_domain)
    assert event["SEQUENCE"] == 0
    assert event["STATUS"] == "CONFIRMED"
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert start == START and end == START + timedelta(hours=1)
    assert event["DTSTART"].params["TZID"] == "Europe/Paris"
    assert start.utcoffset() == timedelta(hours=2)  # CEST, after 29 March
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Paris"]
    assert str(event["LOCATION"]) == INVITE.link
    assert str(event["URL"]) == INVITE.link
    assert str(event["SUMMARY"]) == "Formation manao-compta — dossier D-2026-000042"
    attendees = {str(a): a.params for a in event["ATTENDEE"]}
    assert set(attendees) == {"mailto:claire.martin@dupont-sa.fr", "mailto:fanny@manao.eu"}
    assert attendees["mailto:claire.martin@dupont-sa.fr"]["CN"] == "Claire Martin"
    assert str(event["ORGANIZER"]) == "mailto:assistance@manao.eu"
    # the customer's copy does not carry the trainer's brief
    assert "Fiche de préparation" not in str(event["DESCRIPTION"])


def test_the_trainer_copy_carries_the_brief() -> None:
    _, event = parse(ics(INVITE, SETTINGS, for_trainer=True))
    assert "Besoin : lettrage automatique" in str(event["DESCRIPTION"])


def test_updates_keep_the_uid_and_raise_the_sequence() -> None:
    moved = replace(INVITE, sequence=1, change="rescheduled", starts_at=START + timedelta(days=1))
    cancelled = replace(moved, sequence=2, change="cancelled", reason="Client indisponible")
    cal1, ev1 = parse(ics(moved, SETTINGS, for_trainer=False))
    cal2, ev2 = parse(ics(cancelled, SETTINGS, for_trainer=False))
    assert ev1["UID"] == ev2["UID"] == uid(APPOINTMENT, SETTINGS.mail_domain)
    assert (cal1["METHOD"], ev1["SEQUENCE"], ev1["STATUS"]) == ("REQUEST", 1, "CONFIRMED")
    assert (cal2["METHOD"], ev2["SEQUENCE"], ev2["STATUS"]) == ("CANCEL", 2, "CANCELLED")
    assert ev1.decoded("DTSTART") == START + timedelta(days=1)
    assert "Motif : Client indisponible" in str(ev2["DESCRIPTION"])


def _parts(mail: EmailMessage) -> dict[str, EmailMessage]:
    return {part.get_content_type(): part for part in mail.walk() if not part.is_multipart()}


def test_the_mail_is_french_with_the_calendar_inline_and_attached() -> None:
    mail = message(INVITE, CLAIRE, SETTINGS)
    assert mail["To"] == "Claire Martin <claire.martin@dupont-sa.fr>"
    assert mail["Subject"] == (
        "[D-2026-000042] Formation manao-compta le lundi 30 mars 2026 à 09:00"
    )
    assert mail["Content-Language"] == "fr"
    parts = _parts(mail)
    assert set(parts) == {"text/plain", "text/calendar", "application/ics"}
    assert parts["text/calendar"].get_param("method") == "REQUEST"
    text = parts["text/plain"].get_content()
    assert "Date : le lundi 30 mars 2026 à 09:00 (heure de Paris), jusqu'à 10:00" in text
    assert INVITE.link in text
    assert "Formateur : Fanny Formatrice" in text
    _, event = parse(parts["application/ics"].get_content())
    assert event["UID"] == uid(APPOINTMENT, SETTINGS.mail_domain)
    trainer_mail = message(INVITE, FANNY, SETTINGS)
    assert "Besoin : lettrage automatique" in _parts(trainer_mail)["text/plain"].get_content()
    assert trainer_mail["Message-ID"] != mail["Message-ID"]


def test_the_cancellation_mail_says_so() -> None:
    cancelled = replace(INVITE, sequence=1, change="cancelled", reason="Formateur malade")
    mail = message(cancelled, CLAIRE, SETTINGS)
    assert mail["Subject"].startswith("[D-2026-000042] Annulé : Formation manao-compta")
    parts = _parts(mail)
    assert parts["text/calendar"].get_param("method") == "CANCEL"
    assert "est annulée" in parts["text/plain"].get_content()
    assert "Motif : Formateur malade" in parts["text/plain"].get_content()


def test_the_brief_gathers_context_need_history() -> None:
    order = HandOverIn(
        dossier_id=uuid.uuid4(),
        reference="D-2026-000042",
        software="manao-compta",
        organisation_id=uuid.uuid4(),
        requester_email="claire.martin@dupont-sa.fr",
        requester_name="Claire Martin",
        subject="Lettrage",
        description="Comment lettrer automatiquement ?",
        context="Clôture mensuelle, 3 sites",
        need="Paramétrer le lettrage automatique",
        version="5.2",
    )
    made = brief.build(
        order,
        {"id": order.organisation_id, "name": "Dupont SA", "context": "Cabinet comptable"},
        [
            {
                "reference": "D-2026-000007",
                "subject": "Export FEC",
                "software": "manao-compta",
                "kind": "bug",
                "status": "closed",
                "resolution": "Corrigé en 5.2",
                "received_at": datetime(2026, 2, 3, 10, tzinfo=PARIS),
                "closed_at": datetime(2026, 2, 10, 10, tzinfo=PARIS),
            }
        ],
        [
            {
                "reference": "D-2026-000003",
                "software": "manao-paie",
                "starts_at": datetime(2026, 1, 12, 14, tzinfo=PARIS),
                "trainer_name": "Bruno",
                "status": "held",
                "notes": "Bulletins de paie revus",
            }
        ],
        {"manao-compta": "Manao Compta", "manao-paie": "Manao Paie"},
    )
    assert made.organisation == {
        "id": str(order.organisation_id),
        "name": "Dupont SA",
        "context": "Cabinet comptable",
    }
    assert (made.context, made.need, made.version) == (order.context, order.need, "5.2")
    assert made.text.splitlines() == [
        "Fiche de préparation — dossier D-2026-000042",
        "",
        "Client : Dupont SA — Claire Martin <claire.martin@dupont-sa.fr>",
        "Contexte de l'organisation : Cabinet comptable",
        "Logiciel : Manao Compta (version 5.2)",
        "Demande : Lettrage",
        "",
        "Contexte de travail (diagnostic) : Clôture mensuelle, 3 sites",
        "Besoin technique (diagnostic) : Paramétrer le lettrage automatique",
        "",
        "Description initiale :",
        "Comment lettrer automatiquement ?",
        "",
        "Dossiers précédents du client :",
        "  - D-2026-000007 du 3 février 2026 (Manao Compta, bug, clos) : Export FEC"
        " — résolution : Corrigé en 5.2",
        "",
        "Formations précédentes du client :",
        "  - lundi 12 janvier 2026 à 14:00 avec Bruno (Manao Paie, effectuée, dossier"
        " D-2026-000003) : Bulletins de paie revus",
    ]
