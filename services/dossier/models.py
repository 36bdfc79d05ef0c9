"""Dossier API payloads (API.md: GET /api/v1/dossiers/{id})."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


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
