"""Dossier API payloads (API.md: GET /api/v1/dossiers/{id})."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from assistance.text import Line, Text


class TimelineEntry(BaseModel):
    at: datetime
    kind: str
    visibility: str
    author: str | None = None
    text: str = ""
    data: dict[str, Any] = {}


class DossierOut(BaseModel):
    id: uuid.UUID
    reference: str
    status: str
    kind: str | None
    channel: str
    software: str
    subject: str
    description: str
    requester: dict[str, str]
    organisation_id: uuid.UUID | None
    received_at: datetime
    first_response_due: datetime
    first_responded_at: datetime | None
    technician: dict[str, Any] | None
    closed_at: datetime | None
    resolution: str | None
    details: dict[str, Any] = {}
    timeline: list[TimelineEntry] = []


class DossierSummary(BaseModel):
    id: uuid.UUID
    reference: str
    status: str
    kind: str | None
    channel: str
    software: str
    subject: str
    received_at: datetime
    first_response_due: datetime
    first_responded_at: datetime | None
    technician: dict[str, Any] | None
    closed_at: datetime | None


class DossierPage(BaseModel):
    items: list[DossierSummary]
    total: int


Kind = Literal["usage", "advanced_usage", "bug", "evolution"]
DossierStatus = Literal[
    "new", "in_progress", "waiting_customer", "waiting_service", "resolved", "closed"
]


class DiagnosisIn(BaseModel):
    """R5: the client's work context, the technical need, the classification."""

    model_config = ConfigDict(extra="forbid")
    kind: Kind = Field(description="usage | advanced_usage | bug | evolution")
    context: Text = Field(min_length=1, max_length=10_000, description="Contexte de travail")
    need: Text = Field(min_length=1, max_length=10_000, description="Besoin technique")
    version: Line | None = Field(default=None, max_length=50)


class TextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text = Field(min_length=1, max_length=20_000)


class WorkaroundIn(BaseModel):
    """R8: a workaround for the customer, or the reason none exists (exactly one)."""

    model_config = ConfigDict(extra="forbid")
    text: Text | None = Field(default=None, max_length=20_000)
    none_reason: Text | None = Field(default=None, max_length=5_000)


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: Text = Field(min_length=1, max_length=20_000, description="Résumé de la résolution")


class ReopenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(min_length=1, max_length=5_000)


class QueueItem(BaseModel):
    position: int
    reason: str
    id: uuid.UUID
    reference: str
    status: str
    kind: str | None
    software: str
    subject: str
    received_at: datetime
    first_response_due: datetime
    first_responded_at: datetime | None
    business_minutes_left: int | None = Field(
        description="Minutes ouvrées avant l'échéance de première réponse (négatif : dépassée)"
    )
    technician: dict[str, Any] | None


class QueueOut(BaseModel):
    items: list[QueueItem]
    total: int = Field(description="Dossiers de la file que les filtres gardent, toutes pages")


class Breach(BaseModel):
    dossier_id: uuid.UUID
    reference: str
    software: str
    due: datetime
    breached_at: datetime
    first_responded_at: datetime | None
    technician_id: uuid.UUID | None


class BreachReport(BaseModel):
    items: list[Breach]
    total: int


class Compliance(BaseModel):
    """R3: dossiers of a week (or a software) and how their first response went."""

    key: str = Field(description="Lundi de la semaine (AAAA-MM-JJ) ou code du logiciel")
    total: int
    on_time: int = Field(description="Première réponse avant l'échéance")
    late: int = Field(description="Première réponse après l'échéance, ou échéance passée")
    pending: int = Field(description="Sans réponse, échéance à venir")
    breaches: int = 0


class Volume(BaseModel):
    key: str
    total: int


class ActivityReport(BaseModel):
    since: datetime
    weeks: list[Compliance]
    softwares: list[Compliance]
    channels: list[Volume]
    kinds: list[Volume] = Field(description="`unclassified` : pas encore diagnostiqué")


class CommandPending(BaseModel):
    """A lifecycle command the workflow has not answered in time (202): its outcome is read at
    `location`, and a retry with the same `Idempotency-Key` reads the same outcome."""

    status: Literal["pending"] = "pending"
    command_id: str = Field(description="Id de la commande (et de la mise à jour Temporal)")
    dossier_id: uuid.UUID
    location: str = Field(description="Où lire l'issue de la commande")


class FollowLinksIn(BaseModel):
    """An address whose dossiers' follow links are asked for (issue 14)."""

    email: EmailStr


class FollowLinksOut(BaseModel):
    message: str


class FollowRevokedOut(BaseModel):
    revoked_at: datetime
