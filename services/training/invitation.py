"""Invitations (R7): an ICS event (RFC 5545, iTIP) mailed to the customer and the trainer.

One UID per appointment for its whole life; every change raises SEQUENCE, so calendars update
the event in place: METHOD:REQUEST for a booking or a new time, METHOD:CANCEL for a
cancellation. Times are written in Europe/Paris with their VTIMEZONE; text is French. The
trainer's copy carries the personalised brief (engagement 4); the customer's does not.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime as rfc2822_datetime
from typing import Any, Literal

from icalendar import Calendar, Event, vCalAddress, vText

from assistance import french
from assistance.french import PARIS
from assistance.mail import subject_token
from assistance.settings import Settings
from assistance.text import mail_address

Change = Literal["booked", "rescheduled", "cancelled"]
SENDER_NAME = "Formation Manao"
PRODID = "-//Manao//Centre de service - formation//FR"


@dataclass(frozen=True)
class Person:
    email: str
    name: str


@dataclass(frozen=True)
class Invitation:
    """What every copy of one version of an appointment says."""

    appointment_id: uuid.UUID
    reference: str
    software: str
    sequence: int
    starts_at: datetime
    ends_at: datetime
    link: str
    customer: Person
    trainer: Person
    change: Change = "booked"
    reason: str = ""
    brief_text: str = ""
    software_name: str = ""  # what people read (issue 14); the code when a queued copy has none

    @property
    def software_label(self) -> str:
        return self.software_name or self.software

    @property
    def method(self) -> str:
        return "CANCEL" if self.change == "cancelled" else "REQUEST"

    def as_json(self) -> dict[str, Any]:
        """Everything a copy is rendered from (queued, then rendered when sent)."""
        data = asdict(self)
        data["appointment_id"] = str(self.appointment_id)
        data["starts_at"] = self.starts_at.isoformat()
        data["ends_at"] = self.ends_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Invitation:
        return cls(
            **{
                **data,
                "appointment_id": uuid.UUID(data["appointment_id"]),
                "starts_at": datetime.fromisoformat(data["starts_at"]),
                "ends_at": datetime.fromisoformat(data["ends_at"]),
                "customer": Person(**data["customer"]),
                "trainer": Person(**data["trainer"]),
            }
        )


def uid(appointment_id: uuid.UUID, domain: str) -> str:
    return f"training-{appointment_id}@{domain}"


def ics(inv: Invitation, settings: Settings, for_trainer: bool) -> bytes:
    """The calendar object for one recipient (the trainer's description holds the brief)."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", inv.method)
    event = Event()
    event.add("uid", uid(inv.appointment_id, settings.mail_domain))
    event.add("sequence", inv.sequence)
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", inv.starts_at.astimezone(PARIS))
    event.add("dtend", inv.ends_at.astimezone(PARIS))
    event.add("summary", f"Formation {inv.software_label} — dossier {inv.reference}")
    event.add("description", _description(inv, for_trainer))
    event.add("location", inv.link)
    event.add("url", inv.link)
    event.add("status", "CANCELLED" if inv.change == "cancelled" else "CONFIRMED")
    event.add("transp", "OPAQUE")
    organizer = vCalAddress(f"mailto:{settings.mail_from}")
    organizer.params["cn"] = vText(SENDER_NAME)
    event.add("organizer", organizer)
    for person, role in ((inv.customer, "REQ-PARTICIPANT"), (inv.trainer, "CHAIR")):
        attendee = vCalAddress(f"mailto:{person.email}")
        attendee.params["cn"] = vText(person.name)
        attendee.params["role"] = vText(role)
        attendee.params["partstat"] = vText("ACCEPTED" if role == "CHAIR" else "NEEDS-ACTION")
        attendee.params["rsvp"] = vText("FALSE")
        event.add("attendee", attendee, encode=False)
    cal.add_component(event)
    # A VTIMEZONE covering the appointment's year and the next: small, and DST-exact.
    year = inv.starts_at.astimezone(PARIS).year
    cal.add_missing_timezones(date(year - 1, 1, 1), date(year + 2, 1, 1))
    return cal.to_ical()


def message(inv: Invitation, recipient: Person, settings: Settings) -> EmailMessage:
    """The mail to one recipient: French text, the ICS inline (text/calendar) and attached."""
    for_trainer = recipient == inv.trainer
    text = _trainer_text(inv) if for_trainer else _customer_text(inv)
    payload = ics(inv, settings, for_trainer)
    mail = EmailMessage()
    mail["From"] = Address(SENDER_NAME, addr_spec=settings.mail_from)
    mail["To"] = mail_address(recipient.name, recipient.email)  # no CR/LF (issue 11)
    mail["Reply-To"] = settings.support_address
    mail["Subject"] = _subject(inv)
    mail["Date"] = rfc2822_datetime(datetime.now(UTC))
    mail["Message-ID"] = message_id(inv, recipient.email, settings.mail_domain)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834
    mail.set_content(text)
    mail.add_alternative(
        payload, maintype="text", subtype="calendar", params={"method": inv.method}
    )
    mail.add_attachment(payload, maintype="application", subtype="ics", filename="invitation.ics")
    mail["Content-Language"] = "fr"
    return mail


def message_id(inv: Invitation, recipient: str, domain: str) -> str:
    """Stable per appointment version and recipient; not a signed dossier id, so a reply is
    never taken for the customer writing to the dossier by its Message-ID alone."""
    who = hashlib.sha256(recipient.lower().encode()).hexdigest()[:12]
    return f"<training.{inv.appointment_id}.{inv.sequence}.{who}@{domain}>"


def _subject(inv: Invitation) -> str:
    prefix = {"booked": "", "rescheduled": "Modifié : ", "cancelled": "Annulé : "}[inv.change]
    return (
        f"{subject_token(inv.reference)} {prefix}Formation {inv.software_label} le "
        f"{french.moment(inv.starts_at)}"
    )


def _when(inv: Invitation) -> str:
    starts, ends = french.moment(inv.starts_at), french.clock(inv.ends_at)
    return f"le {starts} (heure de Paris), jusqu'à {ends}"


def _description(inv: Invitation, for_trainer: bool) -> str:
    lines = [f"Formation {inv.software_label} — dossier {inv.reference}", f"Lien : {inv.link}"]
    if inv.reason:
        lines.append(f"Motif : {inv.reason}")
    if for_trainer and inv.brief_text:
        lines += ["", inv.brief_text]
    return "\n".join(lines)


def _customer_text(inv: Invitation) -> str:
    hello = f"Bonjour {inv.customer.name},\n\n"
    if inv.change == "cancelled":
        body = (
            f"Votre formation {inv.software_label} prévue {_when(inv)} avec {inv.trainer.name} "
            "est "
            f"annulée.\n" + (f"Motif : {inv.reason}\n" if inv.reason else "") + "\n"
            "Nous revenons vers vous pour convenir d'un nouveau rendez-vous.\n"
        )
    else:
        intro = (
            "Votre formation a été déplacée."
            if inv.change == "rescheduled"
            else "Votre demande nécessite un accompagnement personnalisé : nous avons réservé "
            "pour vous une formation."
        )
        body = (
            f"{intro}\n\n"
            f"Logiciel : {inv.software_label}\n"
            f"Formateur : {inv.trainer.name}\n"
            f"Date : {_when(inv)}\n"
            f"Lien de connexion (partage d'écran et visioconférence) : {inv.link}\n\n"
            "L'invitation est jointe : ajoutez-la à votre agenda. Le formateur prépare la "
            "séance à partir de votre contexte de travail et de l'historique de vos demandes. "
            "Si l'horaire ne vous convient pas, répondez à ce message.\n"
        )
    return hello + body + "\nCordialement,\nL'équipe formation Manao\n"


def _trainer_text(inv: Invitation) -> str:
    hello = f"Bonjour {inv.trainer.name},\n\n"
    if inv.change == "cancelled":
        body = f"La formation du dossier {inv.reference} prévue {_when(inv)} est annulée.\n" + (
            f"Motif : {inv.reason}\n" if inv.reason else ""
        )
    else:
        what = "déplacée" if inv.change == "rescheduled" else "réservée pour vous"
        body = (
            f"Une formation {inv.software_label} est {what} : {_when(inv)}, avec "
            f"{inv.customer.name} <{inv.customer.email}>.\n"
            f"Lien de connexion : {inv.link}\n\n"
            f"{inv.brief_text}"
        )
    return hello + body + "\nL'équipe formation Manao\n"
