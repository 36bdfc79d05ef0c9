"""Mail headers, decoded without ever raising (R1): raw 8-bit bytes read as UTF-8, else
cp1252; RFC 2047 encoded-words with their charset, else UTF-8, cp1252, latin-1; addresses,
Message-IDs and dates normalised; the threading headers of a reply."""

from __future__ import annotations

import codecs
import re
from datetime import UTC, datetime
from email.header import decode_header
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

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


_ANGLE = re.compile(r"<([^<>\s]{1,900})>")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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


def unescape_8bit(value: str) -> str:
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
    text = unescape_8bit(text)
    text = re.sub(r"\r?\n[ \t]*", " ", text)[:MAX_HEADER_CHARS]
    if "=?" in text:
        text = _decode_encoded_words(text)
    kept = CONTROL.sub("", text)
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


def raw_headers(message: Message) -> list[tuple[str, str]]:
    try:
        items = list(message.raw_items())
    except Exception:  # noqa: BLE001
        return []
    return [(unescape_8bit(str(name)).strip(), value) for name, value in items]


def first_header(headers: list[tuple[str, Any]], name: str) -> str | None:
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


def addresses(raw: str | None) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header, names decoded."""
    if not raw:
        return []
    text = re.sub(r"\r?\n[ \t]*", " ", unescape_8bit(raw))
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
    value = re.sub(r"\s+", " ", unescape_8bit(raw)).strip()
    match = _ANGLE.search(value)
    if match:
        return f"<{match[1]}>"
    token = value.strip("<> ")
    if token and " " not in token and len(token) <= 900:
        return f"<{token}>"
    return None


def header_date(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        moment = parsedate_to_datetime(unescape_8bit(raw))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def as_email_message(in_reply_to: str, references: str) -> EmailMessage:
    """A bare message carrying only the threading headers (for `assistance.mail`)."""
    message = EmailMessage()
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to[:MAX_HEADER_CHARS]
    if references:
        message["References"] = references[:MAX_HEADER_CHARS]
    return message
