"""Delivery status notifications (RFC 3464): which recipients failed, and the Message-ID of
the mail of ours that bounced."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from typing import Any

from services.intake.mail.headers import (
    decode_bytes,
    decode_header_value,
    first_header,
    normalise_address,
    normalise_message_id,
    raw_headers,
)
from services.intake.mail.mime import payload_of


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


def _status_blocks(part: Message) -> list[list[tuple[str, str]]]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [raw_headers(block) for block in payload if isinstance(block, Message)]
    text = decode_bytes(payload_of(part))
    blocks = re.split(r"\r?\n\s*\r?\n", text)
    parser = HeaderParser()
    return [list(parser.parsestr(block.strip() + "\n").items()) for block in blocks if block]


def read_delivery_status(part: Message, report: DeliveryReport) -> None:
    """Add the recipients of a `message/delivery-status` part to the report."""
    for block in _status_blocks(part):
        recipient = first_header(block, "Final-Recipient") or first_header(
            block, "Original-Recipient"
        )
        if not recipient:
            continue
        address = normalise_address(decode_header_value(recipient).rpartition(";")[2])
        if address is None:
            continue
        report.recipients.append(
            RecipientStatus(
                address=address,
                action=decode_header_value(first_header(block, "Action") or "").lower(),
                status=decode_header_value(first_header(block, "Status") or ""),
                diagnostic=decode_header_value(first_header(block, "Diagnostic-Code") or "")[:500],
            )
        )


def read_original_headers(text: str, report: DeliveryReport) -> None:
    """The bounced mail's headers, as a `text/rfc822-headers` part."""
    parsed = HeaderParser().parsestr(text, headersonly=True)
    read_original_headers_of(list(parsed.items()), report)


def read_original_headers_of(headers: list[tuple[str, Any]], report: DeliveryReport) -> None:
    """The Message-ID of the bounced mail, from its headers."""
    if report.original_message_id is None:
        report.original_message_id = normalise_message_id(first_header(headers, "Message-ID"))


# --- the mail ------------------------------------------------------------------------------------
