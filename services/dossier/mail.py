"""The mails of the dossier lifecycle (R2, R3, R10): French templates rendered into messages.

`render(order, settings)` builds the mail to the customer for one step of a dossier;
`render_notice(notice, recipient, settings)` the warning, reminder or escalation to one member
of staff. Templates live in `templates/mail/<name>.txt` (plain text, the part people read); an
escaped HTML alternative is derived from the text. Times are shown in Europe/Paris, in French
(assistance/french.py).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime as rfc2822_datetime
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, Environment, FileSystemLoader, Undefined, select_autoescape

from assistance import french
from assistance.mail import signed_message_id, subject_token
from assistance.settings import Settings
from assistance.text import header_text
from services.dossier import follow
from services.dossier.state import MailOrder, StaffNotice

SENDER_NAME = "Assistance Manao"
TEMPLATE_DIR = Path(__file__).parent / "templates" / "mail"

# Mails to the customer, one template each.
CUSTOMER_TEMPLATES = frozenset(
    {
        "acknowledgement",
        "response",
        "information_request",
        "customer_reminder",
        "screen_share",
        "workaround",
        "resolved",
        "closure",
        "reopened",
        "training_booked",
        "fix_released",
        "evolution_accepted",
        "evolution_rejected",
        "evolution_recorded",
        "evolution_released",
        "bug_reported",
    }
)

# Staff notices share one template; the kind gives its heading.
NOTICE_HEADINGS = {
    "first_response_warning": "Première réponse bientôt due (engagement 1)",
    "first_response_breach": "Délai de première réponse dépassé (engagement 1)",
    "reminder": "Dossier sans suite : relance",
    "escalation": "Dossier sans suite : escalade",
    "training_no_slot": "Aucun créneau de formation disponible",
    "customer_replied": "Le client a répondu",
    "bug_not_reproducible": "Bug non reproduit : le dossier revient à l'assistance",
}


class UnknownTemplate(ValueError):
    """A mail was ordered with a template that does not exist (a programming error)."""


def fr_datetime(value: Any) -> str:
    """« lundi 30 novembre 2026 à 14:00 », Europe/Paris; '' for nothing, text left as is."""
    moment = _as_datetime(value)
    if moment is None:
        return "" if _missing(value) else str(value)
    return french.moment(moment)


def _missing(value: Any) -> bool:
    return value is None or isinstance(value, Undefined) or value == ""


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _environment(autoescape: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"]) if autoescape else False,
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fr_datetime"] = fr_datetime
    return env


_TEXT = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


# RFC 3834: every mail no person wrote says so, so that no responder answers it (issue 14).
# `auto-replied`: in answer to a mail the customer sent (the acknowledgement of a deposit,
# the reopening a reply caused); `auto-generated`: the other automatic mails.
AUTO_REPLIED = frozenset({"acknowledgement", "reopened"})
AUTO_GENERATED = frozenset(
    {
        "customer_reminder",
        "closure",
        "fix_released",
        "bug_reported",
        "evolution_recorded",
        "evolution_accepted",
        "evolution_rejected",
        "evolution_released",
        "training_booked",
    }
)


def auto_submitted(order: MailOrder) -> str | None:
    """The `Auto-Submitted` value of a customer mail, None for a mail a person wrote."""
    if order.template in AUTO_REPLIED:
        return "auto-replied"
    if order.auto or order.template in AUTO_GENERATED:
        return "auto-generated"
    return None


FOLLOW_LINK_TEMPLATES = frozenset({"acknowledgement"})


def render(order: MailOrder, settings: Settings) -> EmailMessage:
    """The mail to the customer for `order`: French text, an HTML alternative, threading."""
    if order.template not in CUSTOMER_TEMPLATES:
        raise UnknownTemplate(f"no mail template {order.template!r}")
    context = {"public_url": settings.public_url, **order.context}
    if order.template in FOLLOW_LINK_TEMPLATES:  # issue 14: follow without an account
        context.setdefault(
            "follow_url", follow.link(settings, uuid.UUID(order.dossier_id), order.to)
        )
    context.setdefault("reference", order.reference)
    # R3: the dossier's own commitment, from the workflow; else today's (assistance/commitment.py)
    context.setdefault("first_response_delay", settings.commitment().delay_text())
    text = _TEXT.get_template(f"{order.template}.txt").render(context)
    message = _message(
        settings,
        to=order.to,
        subject=_subject(order.reference, str(context.get("subject") or "")),
        message_id=signed_message_id(
            order.reference, order.step, settings.mail_signing_key, settings.mail_domain
        ),
        auto=auto_submitted(order),
        text=text,
    )
    if order.thread:
        message["In-Reply-To"] = order.thread[-1]
        message["References"] = " ".join(order.thread)
    return message


def notice_message_id(notice: StaffNotice, recipient: str, domain: str) -> str:
    """A stable Message-ID per notice and recipient, deliberately not a signed dossier id.

    A member of staff who replies to a notice must not be taken for the customer writing to
    the dossier, so the inbound receiver must not recognise it (see `assistance.mail`).
    """
    who = hashlib.sha256(recipient.lower().encode()).hexdigest()[:12]
    return f"<staff.{notice.reference}.{notice.step}.{who}@{domain}>"


def render_notice(notice: StaffNotice, recipient: str, settings: Settings) -> EmailMessage:
    """The mail telling one member of staff about `notice` (always automatic)."""
    context = {
        "reference": notice.reference,
        "kind": notice.kind,
        "heading": NOTICE_HEADINGS.get(notice.kind, notice.subject),
        "subject": notice.subject,
        "text": notice.text,
        "public_url": settings.public_url,
    }
    text = _TEXT.get_template("staff_notice.txt").render(context)
    return _message(
        settings,
        to=recipient,
        subject=_subject(notice.reference, notice.subject),
        message_id=notice_message_id(notice, recipient, settings.mail_domain),
        auto="auto-generated",
        text=text,
    )


def _subject(reference: str, subject: str) -> str:
    subject = re.sub(r"\s+", " ", subject).strip()
    token = subject_token(reference)
    if token in subject:
        return subject
    return f"{token} {subject}".rstrip()


def _message(
    settings: Settings, *, to: str, subject: str, message_id: str, auto: str | None, text: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = Address(SENDER_NAME, addr_spec=settings.mail_from)
    message["To"] = to
    message["Reply-To"] = settings.support_address
    message["Subject"] = header_text(subject)  # one line whatever was stored (issue 11)
    message["Date"] = rfc2822_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id
    if auto:
        message["Auto-Submitted"] = auto  # RFC 3834: no auto-replies to this
    message.set_content(text)
    message.add_alternative(
        _HTML.get_template("_layout.html").render(paragraphs=_paragraphs(text), subject=subject),
        subtype="html",
    )
    message["Content-Language"] = "fr"  # after the body: set_content clears Content-* headers
    return message


def _paragraphs(text: str) -> list[list[str]]:
    """The text's paragraphs, each a list of lines (the HTML template escapes them)."""
    blocks = re.split(r"\n\s*\n", text.strip())
    return [block.splitlines() for block in blocks if block.strip()]
