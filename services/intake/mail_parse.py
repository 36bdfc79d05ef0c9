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

import codecs
import contextlib
import hashlib
import html as html_lib
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.header import decode_header
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

import nh3

MAX_DEPTH = 12  # nested multiparts deeper than this are not read
MAX_PARTS = 500
MAX_HEADER_CHARS = 8_000

# Charset labels seen in the wild that Python does not know, or knows by another name.
CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",  # what senders labelled latin-1 almost always is (WHATWG)
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ansi_x3.4-1968": "cp1252",
    "windows-1252": "cp1252",
    "iso-8859-8-i": "iso-8859-8",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}

DANGEROUS_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "application/xml",
        "text/xml",
        "application/javascript",
        "text/javascript",
        "application/x-msdownload",
        "application/x-executable",
        "application/x-sh",
        "text/x-shellscript",
        "application/java-archive",
        "application/x-ms-shortcut",
        "application/hta",
    }
)
DANGEROUS_EXTENSIONS = frozenset(
    {
        "exe",
        "com",
        "scr",
        "bat",
        "cmd",
        "ps1",
        "psm1",
        "vbs",
        "vbe",
        "js",
        "jse",
        "mjs",
        "wsf",
        "wsh",
        "hta",
        "msi",
        "msp",
        "lnk",
        "jar",
        "html",
        "htm",
        "xhtml",
        "shtml",
        "svg",
        "svgz",
        "xml",
        "reg",
        "pif",
        "cpl",
        "dll",
        "sys",
        "iso",
        "img",
        "vhd",
        "docm",
        "xlsm",
        "pptm",
        "dotm",
        "sh",
        "app",
        "application",
        "gadget",
        "inf",
        "scf",
        "url",
    }
)
# Zip and OLE containers: the declared type says which document it is.
ZIP_DOCUMENTS = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".jar": "application/java-archive",
    ".docm": "application/vnd.ms-word.document.macroenabled.12",
    ".xlsm": "application/vnd.ms-excel.sheet.macroenabled.12",
}
OLE_DOCUMENTS = {
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
    ".msg": "application/vnd.ms-outlook",
    ".msi": "application/x-msi",
}
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF-", "application/pdf"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (0, b"MZ", "application/x-msdownload"),
    (0, b"\x7fELF", "application/x-executable"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"Rar!\x1a\x07", "application/vnd.rar"),
    (0, b"{\\rtf", "application/rtf"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (8, b"WEBP", "image/webp"),
    (4, b"ftyp", "video/mp4"),
    (0, b"OggS", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"BEGIN:VCALENDAR", "text/calendar"),
    (0, b"#!", "text/x-shellscript"),
)

_ANGLE = re.compile(r"<([^<>\s]{1,900})>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FILENAME_CONTROL = re.compile(r"[\x00-\x1f\x7f\"<>:|?*]")


@dataclass
class Attachment:
    filename: str
    declared_type: str
    sniffed_type: str
    size: int
    sha256: str
    content: bytes | None  # None when not kept (too big)
    dropped: str | None = None  # why the content was not kept
    inline: bool = False
    content_id: str | None = None

    @property
    def dangerous(self) -> bool:
        """A browser could run it: never served as its own type, never inline."""
        ext = self.filename.rpartition(".")[2].lower() if "." in self.filename else ""
        return (
            self.sniffed_type in DANGEROUS_TYPES
            or self.declared_type in DANGEROUS_TYPES
            or ext in DANGEROUS_EXTENSIONS
        )


@dataclass
class RecipientStatus:
    """One recipient of a delivery status notification (RFC 3464)."""

    address: str
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # 5.1.1
    diagnostic: str = ""

    @property
    def failed(self) -> bool:
        return self.action == "failed" or (not self.action and self.status.startswith("5"))


@dataclass
class DeliveryReport:
    """What a DSN says: per recipient, and which of our mails it is about."""

    recipients: list[RecipientStatus] = field(default_factory=list)
    original_message_id: str | None = None


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


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    label = charset.strip().strip('"').lower()
    label = CHARSET_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):
        return None


_WESTERN = frozenset({"cp1252", "ascii", "latin-1", "iso8859-1", "iso8859-15"})


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Text from bytes in any charset, declared or not; never fails (latin-1 at worst).

    Valid UTF-8 labelled ASCII or Western (a common mislabel) is read as UTF-8.
    """
    declared = _codec(charset)
    order = ["utf-8", declared] if declared is None or declared in _WESTERN else [declared]
    tried: list[str] = []
    for candidate in (*order, "utf-8", "cp1252"):
        if candidate is None or candidate in tried:
            continue
        tried.append(candidate)
        try:
            return data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1")


def _unescape_8bit(value: str) -> str:
    """A header the parser read with surrogate escapes (raw 8-bit bytes): UTF-8, else cp1252."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"))


def decode_header_value(value: Any, cleaned: list[str] | None = None, name: str = "") -> str:
    """A header value as text: unfolded, 8-bit bytes and encoded-words decoded, no controls
    (`name` is added to `cleaned` when controls had to be removed: issue 11)."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # noqa: BLE001 - a header object that cannot even print itself
        return ""
    text = _unescape_8bit(text)
    text = re.sub(r"\r?\n[ \t]*", " ", text)[:MAX_HEADER_CHARS]
    if "=?" in text:
        text = _decode_encoded_words(text)
    kept = _CONTROL.sub("", text)
    if cleaned is not None and kept != text and name not in cleaned:
        cleaned.append(name)
    return kept.strip()


def _decode_encoded_words(text: str) -> str:
    try:
        chunks = decode_header(text)
    except Exception:  # noqa: BLE001 - a malformed encoded-word: keep the text as written
        return text
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            try:
                out.append(chunk.decode("raw-unicode-escape"))
            except UnicodeDecodeError:
                out.append(chunk.decode("latin-1"))
        else:
            out.append(decode_bytes(chunk, charset))
    return "".join(out)


def _raw_headers(message: Message) -> list[tuple[str, str]]:
    try:
        items = list(message.raw_items())
    except Exception:  # noqa: BLE001
        return []
    return [(_unescape_8bit(str(name)).strip(), value) for name, value in items]


def _first(headers: list[tuple[str, Any]], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers:
        if key.lower() == lowered:
            return value if isinstance(value, str) else str(value)
    return None


def normalise_address(address: str) -> str | None:
    """`local@domain` with the domain lower-cased; None if it is no address."""
    address = address.strip().strip("<>").strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in address):
        return None
    return f"{local}@{domain.lower().rstrip('.')}"


def _addresses(raw: str | None) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header, names decoded."""
    if not raw:
        return []
    text = re.sub(r"\r?\n[ \t]*", " ", _unescape_8bit(raw))
    try:
        pairs = getaddresses([text])
    except Exception:  # noqa: BLE001
        return []
    found = []
    for name, address in pairs:
        normal = normalise_address(address)
        if normal is not None:
            found.append((decode_header_value(name).strip('"').strip(), normal))
    return found


def normalise_message_id(raw: str | None) -> str | None:
    """The first `<…>` of a Message-ID header; a bare token is wrapped; None if nothing."""
    if not raw:
        return None
    value = re.sub(r"\s+", " ", _unescape_8bit(raw)).strip()
    match = _ANGLE.search(value)
    if match:
        return f"<{match[1]}>"
    token = value.strip("<> ")
    if token and " " not in token and len(token) <= 900:
        return f"<{token}>"
    return None


def _date(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        moment = parsedate_to_datetime(_unescape_8bit(raw))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- HTML ----------------------------------------------------------------------------------------


def _no_remote_images(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        lowered = value.strip().lower()
        if not lowered.startswith("cid:"):
            return None  # http(s), protocol-relative, data: — nothing loads when displayed
    return value


def sanitise_html(markup: str) -> str:
    """HTML safe to show a technician: no scripts or styles, links inert, no remote images."""
    return nh3.clean(
        markup,
        attribute_filter=_no_remote_images,
        url_schemes=set(nh3.ALLOWED_URL_SCHEMES) | {"cid"},
        link_rel="noopener noreferrer nofollow",
    )


_BLOCK_END = re.compile(r"(?i)</(p|div|tr|h[1-6]|table|blockquote|ul|ol|pre)\s*>")


def html_to_text(markup: str) -> str:
    """A readable text version of an HTML body."""
    text = re.sub(r"(?is)<(script|style|head|title)\b.*?</\1\s*>", " ", markup)
    text = re.sub(r"(?i)<br\s*/?>", "\n", text)
    text = _BLOCK_END.sub("\n\n", text)
    text = re.sub(r"(?i)<li\b[^>]*>", "\n- ", text)
    text = re.sub(r"(?i)</t[dh]\s*>", " \t", text)
    text = html_lib.unescape(nh3.clean(text, tags=set()))
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- attachments ---------------------------------------------------------------------------------


def sniff(data: bytes, declared: str = "", filename: str = "") -> str:
    """The type the bytes say they are, whatever the sender declared."""
    head = data[:1024]
    ext = ("." + filename.rpartition(".")[2].lower()) if "." in filename else ""
    for offset, magic, kind in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            if kind == "application/zip":
                return ZIP_DOCUMENTS.get(ext, declared if _zip_declared(declared) else kind)
            if kind == "application/x-ole-storage":
                return OLE_DOCUMENTS.get(ext, kind)
            return kind
    probe = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if probe.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return "text/html"
    if b"<svg" in probe[:512]:
        return "image/svg+xml"
    if probe.startswith(b"<?xml"):
        return "application/xml"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 3:  # a character cut by the 1 KiB window
                return "text/plain"
            if declared.startswith("text/"):
                return "text/plain"
    return "application/octet-stream"


def _zip_declared(declared: str) -> bool:
    return declared.startswith(("application/vnd.openxmlformats", "application/vnd.oasis"))


def safe_filename(name: str | None, index: int, content_type: str) -> str:
    """A file name with no path, no control characters, at most 150 characters."""
    cleaned = decode_header_value(name or "")
    cleaned = cleaned.replace("\\", "/").rpartition("/")[2]
    cleaned = _FILENAME_CONTROL.sub("_", cleaned).strip(" .")
    if not cleaned:
        ext = mimetypes.guess_extension(content_type) or ".bin"
        return f"piece-jointe-{index}{ext}"
    if len(cleaned) > 150:
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = (stem[: 150 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else cleaned
        cleaned = cleaned[:150]
    return cleaned


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


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:  # noqa: BLE001
        return "application/octet-stream"


def _param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:  # noqa: BLE001
        return None
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        try:
            return decode_bytes(str(value[2]).encode("latin-1", "replace"), value[0])
        except Exception:  # noqa: BLE001
            return str(value[2])
    return None if value is None else _unescape_8bit(str(value))


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:  # noqa: BLE001
        return ""


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = None
    if name is None:
        name = _param(part, "name")
    return None if name is None else _unescape_8bit(str(name))


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        data = None
    if isinstance(data, bytes):
        return data
    try:
        raw = part.get_payload()
    except Exception:  # noqa: BLE001
        return b""
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    if isinstance(raw, bytes):
        return raw
    return b""


def _message_bytes(message: Message) -> bytes:
    try:
        return message.as_bytes(policy=default_policy.clone(linesep="\r\n"))
    except Exception:  # noqa: BLE001 - re-serialising a broken message: keep what prints
        try:
            return message.as_string().encode("utf-8", "surrogateescape")
        except Exception:  # noqa: BLE001
            return b""


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
    ctype = _content_type(part)
    try:
        if ctype.startswith("multipart/"):
            _walk_multipart(part, walk, depth, in_report or ctype == "multipart/report")
        elif ctype in ("message/rfc822", "message/global"):
            _keep_message(part, walk, in_report)
        elif ctype == "message/delivery-status":
            _delivery_status(part, walk)
        elif ctype == "text/rfc822-headers" and in_report:
            _original_headers(decode_bytes(_payload(part)), walk)
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
        ctype = _content_type(node)
        is_text = ctype in ("text/plain", "text/html") and not _filename(node)
        if is_text and _disposition(node) != "attachment":
            _leaf(node, ctype, walk)


def _walk_multipart(part: Message, walk: _Walk, depth: int, in_report: bool) -> None:
    children = part.get_payload()
    if isinstance(children, list):
        for child in children:
            if isinstance(child, Message):
                _walk(child, walk, depth + 1, in_report)
        return
    walk.defects.append("multipart without readable parts: read as text")
    text = decode_bytes(_payload(part), _param(part, "charset"))
    if text.strip():
        walk.texts.append(text)


def _keep_message(part: Message, walk: _Walk, in_report: bool) -> None:
    inner = part.get_payload()
    message = inner[0] if isinstance(inner, list) and inner else None
    if isinstance(message, Message):
        data = _message_bytes(message)
        if in_report:
            _original_headers_of(_raw_headers(message), walk)
    else:
        data = _payload(part)
    subject = ""
    if isinstance(message, Message):
        subject = decode_header_value(_first(_raw_headers(message), "Subject") or "")
    name = _filename(part) or (subject[:80] + ".eml" if subject else None)
    _attach(walk, data, name, "message/rfc822", part, sniffed="message/rfc822")


def _leaf(part: Message, ctype: str, walk: _Walk) -> None:
    disposition = _disposition(part)
    filename = _filename(part)
    data = _payload(part)
    is_body = ctype in ("text/plain", "text/html") and disposition != "attachment"
    if is_body and not filename:
        text = decode_bytes(data, _param(part, "charset"))
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
    raw_cid = _first(_raw_headers(part), "Content-ID")
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
            inline=_disposition(part) == "inline" or content_id is not None,
            content_id=content_id,
        )
    )


def _status_blocks(part: Message) -> list[list[tuple[str, str]]]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [_raw_headers(block) for block in payload if isinstance(block, Message)]
    text = decode_bytes(_payload(part))
    blocks = re.split(r"\r?\n\s*\r?\n", text)
    parser = HeaderParser()
    return [list(parser.parsestr(block.strip() + "\n").items()) for block in blocks if block]


def _delivery_status(part: Message, walk: _Walk) -> None:
    report = walk.report or DeliveryReport()
    walk.report = report
    for block in _status_blocks(part):
        recipient = _first(block, "Final-Recipient") or _first(block, "Original-Recipient")
        if not recipient:
            continue
        address = normalise_address(decode_header_value(recipient).rpartition(";")[2])
        if address is None:
            continue
        report.recipients.append(
            RecipientStatus(
                address=address,
                action=decode_header_value(_first(block, "Action") or "").lower(),
                status=decode_header_value(_first(block, "Status") or ""),
                diagnostic=decode_header_value(_first(block, "Diagnostic-Code") or "")[:500],
            )
        )


def _original_headers(text: str, walk: _Walk) -> None:
    parsed = HeaderParser().parsestr(text, headersonly=True)
    _original_headers_of(list(parsed.items()), walk)


def _original_headers_of(headers: list[tuple[str, Any]], walk: _Walk) -> None:
    report = walk.report or DeliveryReport()
    walk.report = report
    if report.original_message_id is None:
        report.original_message_id = normalise_message_id(_first(headers, "Message-ID"))


# --- the mail ------------------------------------------------------------------------------------


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
    mail.text = _CONTROL.sub("", text)
    if mail.text != text:
        mail.cleaned.append("text")  # the dossier is told (issue 11)
    return mail


def _read_headers(message: Message, mail: ParsedMail) -> None:
    raw = _raw_headers(message)
    mail.headers = [(name, decode_header_value(value)) for name, value in raw[:200]]
    mail.message_id = normalise_message_id(_first(raw, "Message-ID"))
    senders = _addresses(_first(raw, "From")) or _addresses(_first(raw, "Sender"))
    if senders:
        mail.from_name, mail.from_address = senders[0]
    mail.to = [address for _, address in _addresses(_first(raw, "To"))]
    mail.cc = [address for _, address in _addresses(_first(raw, "Cc"))]
    mail.subject = decode_header_value(_first(raw, "Subject") or "", mail.cleaned, "subject")
    mail.date = _date(_first(raw, "Date"))
    mail.in_reply_to = decode_header_value(_first(raw, "In-Reply-To") or "")
    mail.references = decode_header_value(_first(raw, "References") or "")
    return_path = _first(raw, "Return-Path")
    if return_path is not None:
        inside = decode_header_value(return_path).strip()
        mail.return_path = "" if inside.strip("<> ") == "" else normalise_address(inside) or ""
    auto = _first(raw, "Auto-Submitted")
    if auto is not None:
        mail.auto_submitted = decode_header_value(auto).split(";")[0].strip().lower()
    precedence = _first(raw, "Precedence")
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
    if _content_type(message) == "multipart/report":
        mail.report_type = (_param(message, "report-type") or "").lower() or "unknown"


def as_email_message(in_reply_to: str, references: str) -> EmailMessage:
    """A bare message carrying only the threading headers (for `assistance.mail`)."""
    message = EmailMessage()
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to[:MAX_HEADER_CHARS]
    if references:
        message["References"] = references[:MAX_HEADER_CHARS]
    return message
