"""Inbound mail parsing that never crashes (R1): whatever bytes arrive become a `ParsedMail`.

The stdlib `email` package with `policy.default` splits the message; every step after that is
wrapped, so a part that cannot be read becomes a recorded defect, never an exception.

- Headers are decoded here, not by the header registry: raw 8-bit bytes are read as UTF-8,
  else cp1252; RFC 2047 encoded-words with their charset, else UTF-8, cp1252, latin-1.
- Text parts: the declared charset (ISO-8859-1 read as its cp1252 superset, unknown names
  ignored), then UTF-8, cp1252, latin-1, which cannot fail.
- HTML is sanitised with nh3 for display (no scripts, styles or event handlers; remote images
  dropped, so opening a mail tells no tracker anything) and a text version is derived when
  the mail has no plain part.
- Attachments are kept up to a size limit, their type sniffed from their first bytes; types a
  browser could run (HTML, SVG, scripts, executables) are flagged dangerous.
- Delivery status notifications (RFC 3464) are read: which recipients failed, and the
  Message-ID of the mail that bounced.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy

from services.intake.mail.attachments import Attachment, safe_filename, sniff
from services.intake.mail.bodies import html_to_text, sanitise_html
from services.intake.mail.dsn import (
    DeliveryReport,
    read_delivery_status,
    read_original_headers,
    read_original_headers_of,
)
from services.intake.mail.headers import (
    CONTROL,
    addresses,
    decode_bytes,
    decode_header_value,
    first_header,
    header_date,
    normalise_address,
    normalise_message_id,
    raw_headers,
)
from services.intake.mail.mime import (
    content_type_of,
    disposition_of,
    filename_of,
    message_bytes,
    param_of,
    payload_of,
)

MAX_DEPTH = 12  # nested multiparts deeper than this are not read
MAX_PARTS = 500


@dataclass
class ParsedMail:
    message_id: str | None = None  # "<…>", as the sender wrote it
    from_address: str | None = None  # local@domain, domain lower-cased
    from_name: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    subject: str = ""
    date: datetime | None = None
    in_reply_to: str = ""
    references: str = ""
    return_path: str | None = None  # the address inside Return-Path, "" for <>
    auto_submitted: str | None = None  # lower-cased keyword
    precedence: str | None = None
    list_headers: list[str] = field(default_factory=list)
    autoreply_headers: list[str] = field(default_factory=list)
    x_loop: list[str] = field(default_factory=list)
    report_type: str | None = None  # multipart/report's report-type
    report: DeliveryReport | None = None
    text: str = ""
    html: str | None = None  # sanitised
    attachments: list[Attachment] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)  # decoded, for display
    defects: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)  # fields the text policy had to clean

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


# --- decoding ------------------------------------------------------------------------------------


# --- the walk ------------------------------------------------------------------------------------


@dataclass
class _Walk:
    max_attachment_bytes: int
    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    report: DeliveryReport | None = None
    parts: int = 0

    def dsn(self) -> DeliveryReport:
        """The delivery report being read (created by its first part)."""
        if self.report is None:
            self.report = DeliveryReport()
        return self.report


def _walk(part: Message, walk: _Walk, depth: int = 0, in_report: bool = False) -> None:
    walk.parts += 1
    if walk.parts > MAX_PARTS:
        if walk.parts == MAX_PARTS + 1:
            walk.defects.append(f"more than {MAX_PARTS} parts: the rest is not read")
        return
    if depth > MAX_DEPTH:
        defect = f"parts nested deeper than {MAX_DEPTH}: only their text is kept"
        if defect not in walk.defects:
            walk.defects.append(defect)
        walk.parts -= 1
        _texts_below(part, walk)
        return
    ctype = content_type_of(part)
    try:
        if ctype.startswith("multipart/"):
            _walk_multipart(part, walk, depth, in_report or ctype == "multipart/report")
        elif ctype in ("message/rfc822", "message/global"):
            _keep_message(part, walk, in_report)
        elif ctype == "message/delivery-status":
            read_delivery_status(part, walk.dsn())
        elif ctype == "text/rfc822-headers" and in_report:
            read_original_headers(decode_bytes(payload_of(part)), walk.dsn())
        else:
            _leaf(part, ctype, walk)
    except Exception as exc:  # noqa: BLE001 - one unreadable part never costs the mail
        walk.defects.append(f"part {walk.parts} ({ctype}) unreadable: {type(exc).__name__}")


def _texts_below(part: Message, walk: _Walk) -> None:
    """Past the nesting limit, the text parts still reached (issue 14), walked without recursion;
    attachments and reports that deep are not read."""
    stack = [part]
    while stack and walk.parts < MAX_PARTS:
        node = stack.pop()
        children = node.get_payload()
        if node.is_multipart() and isinstance(children, list):
            stack.extend(reversed([c for c in children if isinstance(c, Message)]))
            continue
        walk.parts += 1
        ctype = content_type_of(node)
        is_text = ctype in ("text/plain", "text/html") and not filename_of(node)
        if is_text and disposition_of(node) != "attachment":
            _leaf(node, ctype, walk)


def _walk_multipart(part: Message, walk: _Walk, depth: int, in_report: bool) -> None:
    children = part.get_payload()
    if isinstance(children, list):
        for child in children:
            if isinstance(child, Message):
                _walk(child, walk, depth + 1, in_report)
        return
    walk.defects.append("multipart without readable parts: read as text")
    text = decode_bytes(payload_of(part), param_of(part, "charset"))
    if text.strip():
        walk.texts.append(text)


def _keep_message(part: Message, walk: _Walk, in_report: bool) -> None:
    inner = part.get_payload()
    message = inner[0] if isinstance(inner, list) and inner else None
    if isinstance(message, Message):
        data = message_bytes(message)
        if in_report:
            read_original_headers_of(raw_headers(message), walk.dsn())
    else:
        data = payload_of(part)
    subject = ""
    if isinstance(message, Message):
        subject = decode_header_value(first_header(raw_headers(message), "Subject") or "")
    name = filename_of(part) or (subject[:80] + ".eml" if subject else None)
    _attach(walk, data, name, "message/rfc822", part, sniffed="message/rfc822")


def _leaf(part: Message, ctype: str, walk: _Walk) -> None:
    disposition = disposition_of(part)
    filename = filename_of(part)
    data = payload_of(part)
    is_body = ctype in ("text/plain", "text/html") and disposition != "attachment"
    if is_body and not filename:
        text = decode_bytes(data, param_of(part, "charset"))
        (walk.texts if ctype == "text/plain" else walk.htmls).append(text)
        return
    _attach(walk, data, filename, ctype, part)


def _attach(
    walk: _Walk,
    data: bytes,
    filename: str | None,
    declared: str,
    part: Message,
    sniffed: str | None = None,
) -> None:
    index = len(walk.attachments) + 1
    name = safe_filename(filename, index, declared)
    too_big = len(data) > walk.max_attachment_bytes
    content_id = None
    raw_cid = first_header(raw_headers(part), "Content-ID")
    if raw_cid:
        content_id = normalise_message_id(raw_cid)
    walk.attachments.append(
        Attachment(
            filename=name,
            declared_type=declared,
            sniffed_type=sniffed or sniff(data, declared, name),
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            content=None if too_big else data,
            dropped="too_big" if too_big else None,
            inline=disposition_of(part) == "inline" or content_id is not None,
            content_id=content_id,
        )
    )


def parse(raw: bytes, max_attachment_bytes: int = 10 * 1024 * 1024) -> ParsedMail:
    """Everything the intake needs from a raw message; never raises."""
    mail = ParsedMail()
    try:
        message = message_from_bytes(raw, policy=default_policy)
    except Exception as exc:  # noqa: BLE001 - not even a header block: keep the bytes as text
        mail.defects.append(f"not a mail message: {type(exc).__name__}")
        mail.text = decode_bytes(raw)[:100_000]
        return mail
    try:
        _read_headers(message, mail)
    except Exception as exc:  # noqa: BLE001
        mail.defects.append(f"headers unreadable: {type(exc).__name__}")
    walk = _Walk(max_attachment_bytes)
    _walk(message, walk)
    mail.attachments = walk.attachments
    if mail.report_type == "delivery-status" or (walk.report and walk.report.recipients):
        mail.report = walk.report
    with contextlib.suppress(Exception):
        mail.defects += [type(d).__name__ for d in getattr(message, "defects", [])][:20]
    mail.defects += walk.defects
    texts = [t.strip() for t in walk.texts if t.strip()]
    htmls = [h for h in walk.htmls if h.strip()]
    try:
        if htmls:
            mail.html = sanitise_html("\n".join(htmls))
        mail.text = "\n\n".join(texts) if texts else html_to_text("\n".join(htmls))
    except Exception as exc:  # noqa: BLE001
        mail.defects.append(f"body unreadable: {type(exc).__name__}")
        mail.text = "\n\n".join(texts)
    text = mail.text.replace("\r\n", "\n").replace("\r", "\n")
    mail.text = CONTROL.sub("", text)
    if mail.text != text:
        mail.cleaned.append("text")  # the dossier is told (issue 11)
    return mail


def _read_headers(message: Message, mail: ParsedMail) -> None:
    raw = raw_headers(message)
    mail.headers = [(name, decode_header_value(value)) for name, value in raw[:200]]
    mail.message_id = normalise_message_id(first_header(raw, "Message-ID"))
    senders = addresses(first_header(raw, "From")) or addresses(first_header(raw, "Sender"))
    if senders:
        mail.from_name, mail.from_address = senders[0]
    mail.to = [address for _, address in addresses(first_header(raw, "To"))]
    mail.cc = [address for _, address in addresses(first_header(raw, "Cc"))]
    mail.subject = decode_header_value(first_header(raw, "Subject") or "", mail.cleaned, "subject")
    mail.date = header_date(first_header(raw, "Date"))
    mail.in_reply_to = decode_header_value(first_header(raw, "In-Reply-To") or "")
    mail.references = decode_header_value(first_header(raw, "References") or "")
    return_path = first_header(raw, "Return-Path")
    if return_path is not None:
        inside = decode_header_value(return_path).strip()
        mail.return_path = "" if inside.strip("<> ") == "" else normalise_address(inside) or ""
    auto = first_header(raw, "Auto-Submitted")
    if auto is not None:
        mail.auto_submitted = decode_header_value(auto).split(";")[0].strip().lower()
    precedence = first_header(raw, "Precedence")
    if precedence is not None:
        mail.precedence = decode_header_value(precedence).strip().lower()
    for name, value in raw:
        lowered = name.lower()
        if lowered.startswith("list-") or lowered in ("mailing-list", "x-mailing-list"):
            mail.list_headers.append(name)
        elif lowered in ("x-autoreply", "x-autorespond", "x-autoresponder"):
            mail.autoreply_headers.append(f"{name}: {decode_header_value(value)}")
        elif lowered == "x-loop":
            mail.x_loop.append(decode_header_value(value).lower())
    if content_type_of(message) == "multipart/report":
        mail.report_type = (param_of(message, "report-type") or "").lower() or "unknown"
