"""Mail rules, pure (R1): loop markers, idempotency keys, quoted history, software, texts.

No I/O here; `ingest.py` applies these rules to a delivered message.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from services.intake.mail.parse import ParsedMail

MAX_DESCRIPTION = 20_000
MAX_SUBJECT = 200
LOOP_PRECEDENCE = frozenset({"bulk", "list", "junk"})
BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster", "mail-daemon"})
# RFC 3834 §2 (issue 14): a sender whose mails open dossiers in a burst (an unmarked
# out-of-office, a script repeating itself) gets one acknowledgement in this window: a later
# mail with the same subject that does not thread joins the dossier the first one opened.
BURST_WINDOW = timedelta(hours=1)
# Senders that are programs (RFC 3834 §2, RFC 2142), even without a marker header: list
# managers (`…-request@`, `owner-…@`), delivery daemons, and delivery reports by their wording.
DAEMON_LOCALS = BOUNCE_SENDERS | {"listserv", "majordomo", "mailman", "list-admin"}
DAEMON_NAMES = frozenset(
    {"mail delivery subsystem", "mail delivery system", "mail delivery service", "mailer-daemon"}
)
DSN_SUBJECT = re.compile(
    r"^\s*(undeliver(ed|able)\b|delivery status notification|mail delivery failed|"
    r"returned mail\b|delivery failure|failure notice|non remis\b|remise impossible|"
    r"échec de (la )?remise)",
    re.I,
)
# Headers a relay adds on the way: left out of the content hash of a mail without Message-ID.
TRACE_HEADERS = frozenset(
    {
        "received",
        "return-path",
        "delivered-to",
        "x-original-to",
        "envelope-to",
        "x-envelope-from",
        "x-envelope-to",
        "x-received",
        "arc-seal",
        "arc-message-signature",
        "arc-authentication-results",
        "authentication-results",
        "received-spf",
        "x-spam-status",
        "x-spam-score",
        "x-spam-flag",
        "x-virus-scanned",
    }
)

REASONS = {
    "no_sender": "Aucune adresse d'expéditeur lisible.",
    "own_mail": "Un de nos propres mails revenu à l'assistance (boucle évitée).",
    "bounce": "Avis de non-distribution : l'adresse est marquée en échec.",
    "report": "Rapport automatique (accusé de lecture, signalement) sans demande.",
    "staff_sender": "Mail d'un membre de l'équipe : il n'agit pas sur un dossier "
    "(répondre depuis le back-office).",
    "auto_submitted": "Réponse automatique (Auto-Submitted) : pas de dossier ni de réponse "
    "automatique.",
    "bulk": "Envoi de masse (Precedence bulk/list/junk) : pas de dossier ni de réponse "
    "automatique.",
    "mailing_list": "Mail de liste de diffusion (en-têtes List-*) : pas de dossier ni de "
    "réponse automatique.",
    "null_sender": "Expéditeur vide (<>) : message automatique, pas de réponse.",
    "auto_reply": "Réponse automatique (X-Autoreply) : pas de dossier ni de réponse automatique.",
    "daemon_sender": "Expéditeur automatique (gestionnaire de liste, serveur de messagerie, "
    "avis de non-distribution) : pas de dossier ni de réponse automatique.",
    "rate_limited": "Trop de mails de cet expéditeur dans l'heure : mis de côté.",
    "unknown_dossier": "Le mail cite un dossier inconnu.",
    "sender_mismatch": "Le sujet cite un dossier, mais l'expéditeur n'est ni le demandeur ni "
    "de son organisation.",
    "reply_sender_mismatch": "Réponse à un de nos mails, mais l'expéditeur n'est ni le "
    "demandeur ni de son organisation : non rattachée.",
    "dmarc_fail": "Authentification DMARC en échec pour le domaine d'une organisation cliente "
    "(expéditeur probablement usurpé).",
    "no_software": "Aucun logiciel n'est enregistré : impossible d'ouvrir le dossier.",
    "invalid_request": "Le mail ne peut pas devenir une demande valide.",
    "dossier_finished": "Le dossier est archivé (fenêtre de réouverture dépassée).",
    "internal_error": "Erreur inattendue à l'analyse : message conservé tel quel.",
}


def content_hash(raw: bytes) -> str:
    """A hash of the message without the trace headers relays add (same mail, same hash)."""
    head, sep, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    kept: list[bytes] = []
    skipping = False
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        name = line.split(b":", 1)[0].strip().lower()
        skipping = name.decode("latin-1") in TRACE_HEADERS
        if not skipping:
            kept.append(line)
    return hashlib.sha256(b"\n".join(kept) + sep + body.rstrip(b"\n")).hexdigest()


def dedupe_key(parsed: ParsedMail, raw: bytes) -> str:
    """Idempotency key: the Message-ID (hashed when very long), else a hash of the content."""
    if parsed.message_id:
        key = f"mid:{parsed.message_id}"
        if len(key.encode("utf-8", "replace")) <= 500:
            return key
        return f"mid-sha256:{hashlib.sha256(key.encode('utf-8', 'replace')).hexdigest()}"
    return f"sha256:{content_hash(raw)}"


def loop_marker(parsed: ParsedMail, envelope_from: str | None) -> str | None:
    """Why no automatic answer may go to this mail (RFC 3834 and common practice), or None."""
    if parsed.auto_submitted is not None and parsed.auto_submitted != "no":
        return "auto_submitted"
    if parsed.list_headers or parsed.precedence == "list":
        return "mailing_list"
    if parsed.precedence in LOOP_PRECEDENCE:
        return "bulk"
    if envelope_from == "" or parsed.return_path == "":
        local = (parsed.from_address or "").partition("@")[0].lower()
        return "bounce" if local in BOUNCE_SENDERS else "null_sender"
    if parsed.autoreply_headers:
        return "auto_reply"
    if is_daemon(parsed):
        return "daemon_sender"
    return None


def is_daemon(parsed: ParsedMail) -> bool:
    """A program, not a person, by its address, its name or a delivery report's subject."""
    local = (parsed.from_address or "").partition("@")[0].lower()
    name = " ".join((parsed.from_name or "").lower().split())
    return (
        local in DAEMON_LOCALS
        or local.endswith(("-request", "-owner", "-bounces"))
        or local.startswith("owner-")
        or name in DAEMON_NAMES
        or DSN_SUBJECT.match(parsed.subject or "") is not None
    )


_ATTRIBUTION = re.compile(
    r"^\s*(le|on|am|el)\b.{0,300}(a écrit|a ecrit|wrote|schrieb|escribió)\s*:?\s*$", re.I
)
_ATTRIBUTION_START = re.compile(r"^\s*(le|on)\s+\S", re.I)
_ATTRIBUTION_END = re.compile(r"(a écrit|a ecrit|wrote)\s*:\s*$", re.I)
_ORIGINAL = re.compile(
    r"^\s*-{2,}\s*(original message|message d'origine|mail d'origine|message transféré|"
    r"forwarded message)",
    re.I,
)
_HEADER_BLOCK_START = re.compile(r"^\s*\**(de|from)\s*\**\s*:\s*\S", re.I)
_HEADER_BLOCK_NEXT = re.compile(
    r"^\s*\**(envoyé|envoye|sent|date|à|to|objet|subject)\s*\**\s*:", re.I
)


def strip_quoted(text: str) -> str:
    """The new part of a reply: the quoted history under it cut (the raw mail keeps it all)."""
    lines = text.splitlines()
    cut = len(lines)
    for i, line in enumerate(lines):
        following = lines[i + 1 : i + 5]
        if (
            _ATTRIBUTION.match(line)
            or (
                _ATTRIBUTION_START.match(line)
                and following
                and _ATTRIBUTION_END.search(line + " " + following[0])
            )
            or _ORIGINAL.match(line)
            or (_HEADER_BLOCK_START.match(line) and any(map(_HEADER_BLOCK_NEXT.match, following)))
        ):
            cut = i
            break
    kept = lines[:cut]
    while kept and (not kept[-1].strip() or kept[-1].lstrip().startswith(">")):
        kept.pop()
    result = "\n".join(kept).strip()
    return result or text.strip()


_TAG = re.compile(r"\[([^\[\]]{1,60})\]")


def choose_software(
    subject: str, recipients: Iterable[str], softwares: Mapping[str, str], default: str = ""
) -> tuple[str | None, str, bool]:
    """(software code, subject without its software tag, guessed) for a new mail.

    The rule: a `[code]` or `[name]` tag in the subject; else `support+code@…` in a recipient;
    else the configured default; else the first software of the directory, flagged as guessed
    so the technician corrects it at diagnosis. None when the directory has no software.
    """
    by_label = {code.lower(): code for code in softwares}
    by_label.update({name.lower(): code for code, name in softwares.items()})
    for match in _TAG.finditer(subject):
        code = by_label.get(match[1].strip().lower())
        if code is not None:
            cleaned = (subject[: match.start()] + subject[match.end() :]).strip()
            return code, re.sub(r"\s{2,}", " ", cleaned), False
    for address in recipients:
        local = address.partition("@")[0]
        if "+" in local:
            code = by_label.get(local.partition("+")[2].lower())
            if code is not None:
                return code, subject, False
    if default in softwares:
        return default, subject, False
    if softwares:
        return sorted(softwares)[0], subject, True
    return None, subject, False


def _size(n: int) -> str:
    return f"{max(1, round(n / 1024))} Ko" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} Mo"


def description_of(parsed: ParsedMail) -> str:
    """The dossier's description: the mail's text, its attachments named, within the limit."""
    return description_of_text(
        parsed.text,
        [
            (a.filename, a.size, a.dropped, a.inline and a.content_id is not None)
            for a in parsed.attachments
        ],
    )


def description_of_text(
    text: str, attachments: Iterable[tuple[str, int, str | None, bool]] = ()
) -> str:
    """`text` (or a placeholder) with a line naming the attachments (not the images embedded
    in an HTML body), at most MAX_DESCRIPTION characters."""
    text = text.strip() or "(message sans texte)"
    names = [
        f"{name} ({_size(size)}{', non conservée : trop volumineuse' if dropped else ''})"
        for name, size, dropped, embedded in attachments
        if not embedded
    ]
    suffix = f"\n\nPièces jointes : {', '.join(names)}" if names else ""
    room = MAX_DESCRIPTION - len(suffix)
    if len(text) > room:
        marker = "\n[… texte tronqué ; le mail complet est conservé]"
        text = text[: room - len(marker)].rstrip() + marker
    return text + suffix


def subject_of(subject: str) -> str:
    cleaned = re.sub(r"\s+", " ", subject).strip() or "(sans objet)"
    return cleaned if len(cleaned) <= MAX_SUBJECT else cleaned[: MAX_SUBJECT - 1] + "…"


def pg_safe(value: Any) -> Any:
    """Text PostgreSQL accepts: no NUL, no lone surrogates (in nested JSON too)."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {pg_safe(k): pg_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [pg_safe(v) for v in value]
    return value
