"""Mail identity and transport, shared by the outbound mails and the inbound receiver.

Every mail the centre sends carries a signed Message-ID:

    <D-2026-000042.3.pcx4mjvq2hduxw5a@assistance.manao.eu>
     reference    step signature           mail domain

The signature is a truncated HMAC-SHA256 of `<reference>.<step>` under the mail signing key.
A reply names that Message-ID in its In-Reply-To/References, so the dossier it belongs to (R1)
is read from a value only the centre can produce, never from the From address, which anyone can
write. The subject token `[D-2026-000042]` is a weaker, human-visible fallback for threading.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from email.message import EmailMessage

import aiosmtplib

SIGNATURE_BYTES = 10  # 80 bits, 16 base32 characters
MAX_STEP = 999_999_999

_SIGNATURE_CHARS = len(base64.b32encode(bytes(SIGNATURE_BYTES)).rstrip(b"="))
_MESSAGE_ID = re.compile(
    r"^(?P<reference>[A-Za-z0-9-]+)\.(?P<step>[0-9]{1,9})\.(?P<signature>[a-z2-7]+)@[^@<>\s]+$"
)
_SUBJECT_TOKEN = re.compile(r"\[(D-[0-9]{4}-[0-9]{6,})\]")
_ANGLE_ID = re.compile(r"<([^<>\s]+)>")


def _signature(reference: str, step: int, key: str) -> str:
    digest = hmac.new(key.encode(), f"{reference}.{step}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:SIGNATURE_BYTES]).decode().rstrip("=").lower()


def signed_message_id(reference: str, step: int, key: str, domain: str) -> str:
    """The Message-ID of the mail sent at `step` of dossier `reference`, angle brackets included."""
    if not re.fullmatch(r"[A-Za-z0-9-]+", reference):
        raise ValueError(f"reference {reference!r} cannot be carried in a Message-ID")
    if not 0 <= step <= MAX_STEP:
        raise ValueError(f"step must be between 0 and {MAX_STEP}")
    return f"<{reference}.{step}.{_signature(reference, step, key)}@{domain}>"


def verify_message_id(mid: str, key: str) -> tuple[str, int] | None:
    """`(reference, step)` if `mid` is a Message-ID the centre signed with `key`, else None."""
    value = mid.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    match = _MESSAGE_ID.match(value)
    if match is None or len(match["signature"]) != _SIGNATURE_CHARS:
        return None
    reference, step = match["reference"], int(match["step"])
    expected = _signature(reference, step, key)
    if not hmac.compare_digest(expected.encode(), match["signature"].encode()):
        return None
    return reference, step


def message_ids(header_value: str | None) -> list[str]:
    """The `<…>` ids in an In-Reply-To or References header, in order."""
    return [f"<{m}>" for m in _ANGLE_ID.findall(header_value or "")]


def dossier_of_reply(message: EmailMessage, key: str) -> tuple[str, int] | None:
    """The dossier a mail replies to: the newest signed id in In-Reply-To, then References."""
    candidates = (
        message_ids(message.get("In-Reply-To")) + message_ids(message.get("References"))[::-1]
    )
    for mid in candidates:
        found = verify_message_id(mid, key)
        if found is not None:
            return found
    return None


def subject_token(reference: str) -> str:
    """The token put in every subject so a reply's subject still names its dossier."""
    return f"[{reference}]"


def reference_in_subject(subject: str | None) -> str | None:
    """The dossier reference a subject carries (`[D-2026-000042]`), if any."""
    match = _SUBJECT_TOKEN.search(subject or "")
    return match[1] if match else None


async def send(message: EmailMessage, host: str, port: int, timeout: float = 30) -> None:
    """Hand `message` to the SMTP server; raises on any refusal (the caller retries)."""
    await aiosmtplib.send(message, hostname=host, port=port, timeout=timeout)
