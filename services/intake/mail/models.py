"""Mail intake payloads: the ledger, the quarantine, stored messages and their attachments."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assistance.text import Line, Text
from services.intake.models import Requester


class Ingested(BaseModel):
    total: int = Field(description="opened + joined")
    opened: int = Field(description="Mails qui ont ouvert un dossier.")
    joined: int = Field(description="Réponses rattachées à leur dossier.")


class Quarantined(BaseModel):
    total: int
    pending: int = Field(description="En attente d'une décision.")
    released: int = Field(description="Libérés dans un dossier (ouvert ou existant).")
    discarded: int
    by_reason: dict[str, int]


class Rejected(BaseModel):
    total: int
    by_reason: dict[str, int]


class LedgerOut(BaseModel):
    """Reconciliation: received = ingested + quarantined + duplicates, always."""

    since: datetime | None
    until: datetime | None
    received: int = Field(description="Livraisons acceptées (250 SMTP/LMTP, lues par IMAP).")
    ingested: Ingested
    quarantined: Quarantined
    duplicates: int = Field(description="Le même message livré à nouveau : compté une fois.")
    rejected: Rejected = Field(description="Refusés à la réception (taille…), avec la raison.")
    by_source: dict[str, int]
    stored_messages: int = Field(description="Messages bruts conservés sur la période.")
    outbox_backlog: int = Field(description="Envois d'intake pas encore relayés.")
    balanced: bool = Field(
        description="received = ingested + quarantined + duplicates et "
        "stored_messages = ingested + quarantined."
    )


class AttachmentRef(BaseModel):
    id: uuid.UUID
    filename: str
    content_type: str = Field(description="Type reconnu d'après le contenu.")
    declared_type: str
    size: int
    kept: bool
    dropped: str | None
    dangerous: bool = Field(description="Exécutable ou interprétable : jamais servi tel quel.")
    inline: bool
    url: str


class QuarantineInfo(BaseModel):
    reason: str
    detail: str
    reference: str | None
    status: Literal["pending", "released", "discarded"]
    created_at: datetime
    resolved_at: datetime | None
    resolution: dict[str, Any] | None


class QuarantineItem(BaseModel):
    mail_id: uuid.UUID
    received_at: datetime
    source: str
    from_address: str | None
    from_name: str
    subject: str
    size: int
    attachments: int
    quarantine: QuarantineInfo


class MailOut(BaseModel):
    """A stored mail as a technician reads it: the text, the sanitised HTML, the attachments."""

    id: uuid.UUID
    message_id: str | None
    source: str
    received_at: datetime
    sent_at: datetime | None
    envelope_from: str | None
    envelope_to: list[str]
    from_address: str | None
    from_name: str
    subject: str
    size: int
    outcome: str
    dossier_id: uuid.UUID | None
    reference: str | None
    threaded_by: str | None
    duplicates: int
    text: str
    html: str | None = Field(description="HTML nettoyé (nh3) : ni script, ni image distante.")
    headers: list[tuple[str, str]]
    details: dict[str, Any]
    attachments: list[AttachmentRef]
    quarantine: QuarantineInfo | None


class _Text(BaseModel):
    """A body whose strings follow the text policy (`assistance.text`): each field says whether
    it is one line or text, and a refusal names it (issue 11)."""


class ReleaseIn(_Text):
    """Release a quarantined mail: open a new dossier, or attach it to an existing one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"action": "attach", "reference": "D-2026-000042"},
                {"action": "open", "software": "manao-paie"},
            ]
        },
    )

    action: Literal["open", "attach"]
    reference: Line | None = Field(
        default=None, max_length=100, description="attach : le dossier visé."
    )
    dossier_id: uuid.UUID | None = Field(default=None, description="attach : ou son id.")
    software: Line | None = Field(
        default=None, max_length=100, description="open : le logiciel concerné."
    )
    subject: Line | None = Field(default=None, max_length=200, description="open : l'objet.")
    requester: Requester | None = Field(default=None, description="open : par défaut From.")


class DiscardIn(_Text):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(min_length=1, max_length=500)


class ReleaseOut(BaseModel):
    mail_id: uuid.UUID
    status: Literal["released", "discarded"]
    action: Literal["opened", "attached", "discarded"]
    dossier_id: uuid.UUID | None = None
    reference: str | None = None


class BounceOut(BaseModel):
    address: str
    bouncing: bool
    first_at: datetime
    last_at: datetime
    count: int
    status: str
    diagnostic: str
    reference: str | None
