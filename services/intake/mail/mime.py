"""Reading one MIME part without ever raising: its type, parameters, disposition, file name
and decoded payload."""

from __future__ import annotations

from email.message import Message
from email.policy import default as default_policy

from services.intake.mail.headers import decode_bytes, unescape_8bit


def content_type_of(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:  # noqa: BLE001
        return "application/octet-stream"


def param_of(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:  # noqa: BLE001
        return None
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        try:
            return decode_bytes(str(value[2]).encode("latin-1", "replace"), value[0])
        except Exception:  # noqa: BLE001
            return str(value[2])
    return None if value is None else unescape_8bit(str(value))


def disposition_of(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:  # noqa: BLE001
        return ""


def filename_of(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = None
    if name is None:
        name = param_of(part, "name")
    return None if name is None else unescape_8bit(str(name))


def payload_of(part: Message) -> bytes:
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


def message_bytes(message: Message) -> bytes:
    try:
        return message.as_bytes(policy=default_policy.clone(linesep="\r\n"))
    except Exception:  # noqa: BLE001 - re-serialising a broken message: keep what prints
        try:
            return message.as_string().encode("utf-8", "surrogateescape")
        except Exception:  # noqa: BLE001
            return b""
