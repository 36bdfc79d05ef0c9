"""Payloads of the evolutions service: the hand-over, the HTTP API, the answers."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from assistance.clock import PARIS
from assistance.handover import HandOver
from assistance.text import Line, Text
from services.evolutions.domain import SLUG, Decision


def _paris(moment: datetime) -> datetime:
    return moment.astimezone(PARIS)


# Times are shown in Europe/Paris, with their offset (API.md conventions).
Paris = Annotated[datetime, AfterValidator(_paris)]


# Text a person typed follows the text policy (`assistance.text`: `Text`, `Line`, refused with
# a 422); text handed over by the workflow is cleaned by the hand-over contract.


def _stripped(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class HandOverIn(HandOver):
    """The hand-over contract (assistance/handover.py), on `commands.evolutions.open` (R9)."""

    service: Literal["evolutions"] = "evolutions"


# --- backlog ------------------------------------------------------------------------------------


class RequestOut(BaseModel):
    """One requesting client of an evolution."""

    id: uuid.UUID
    dossier_id: uuid.UUID
    reference: str
    organisation_id: uuid.UUID | None
    organisation_name: str | None
    requester_name: str
    requester_email: str
    subject: str
    context: str
    need: str
    version: str | None
    recorded_at: Paris


class EvolutionOut(BaseModel):
    id: uuid.UUID
    software: str
    title: str
    summary: str
    status: Literal["open", "merged", "accepted", "rejected"]
    merged_into: uuid.UUID | None
    created_at: Paris
    first_reviewed_at: Paris | None
    decided_at: Paris | None
    decided_by: str | None
    reason: str | None
    specification: str | None
    specification_html: str | None
    shipped_version: str | None
    shipped_at: Paris | None
    requests: list[RequestOut]


class EvolutionPage(BaseModel):
    items: list[EvolutionOut]
    total: int


class GroupIn(BaseModel):
    """Group similar requests: the listed evolutions join this one (R9)."""

    model_config = ConfigDict(extra="forbid")

    evolutions: list[uuid.UUID] = Field(min_length=1, max_length=100)
    title: Line | None = Field(default=None, min_length=1, max_length=200)
    summary: Text | None = Field(default=None, max_length=5000)


class DecisionIn(BaseModel):
    """The product manager's decision (API.md): a specification when accepted, a reason
    when rejected. `title` and `summary` are what the announcements will show (R12)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "decision": "accepted",
                    "reason": "Demandé par plusieurs clients.",
                    "specification": "# Export FEC par établissement\n\n- ...",
                }
            ]
        },
    )

    decision: Decision
    reason: Text | None = Field(default=None, max_length=5000)
    specification: Text | None = Field(default=None, max_length=200_000)
    title: Line | None = Field(default=None, min_length=1, max_length=200)
    summary: Text | None = Field(default=None, max_length=5000)

    @field_validator("reason", "specification", "title", "summary")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return _stripped(value)


class DecisionOut(BaseModel):
    evolution_id: uuid.UUID
    software: str
    decision: Decision
    reason: str | None
    specification: str | None
    decided_at: Paris
    decided_by: str | None
    dossier_ids: list[uuid.UUID]
    handed_to: list[str]  # the IT project managers who received the specification


class ProductManagerOut(BaseModel):
    software: str
    user_id: uuid.UUID
    email: str | None


# --- reviews ------------------------------------------------------------------------------------


class ReviewOut(BaseModel):
    id: uuid.UUID
    software: str
    week: str
    held_at: Paris
    agenda: dict[str, object]
    notified: list[str]


class ReviewScheduleOut(BaseModel):
    software: str
    review_at: str
    timezone: str
    next_reviews: list[Paris]


# --- releases and documentation -----------------------------------------------------------------


class DocPageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: Line = Field(min_length=1, max_length=100, pattern=SLUG.pattern)
    title: Line = Field(min_length=1, max_length=200)
    markdown: Text = Field(max_length=500_000)


class ReleaseIn(BaseModel):
    """A released version (R11, R12), declared by the product manager or their CI."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "version": "5.3",
                    "notes": "Export FEC par établissement.",
                    "evolutions": ["8d7c0f3e-8b5e-4b1e-9d7a-2f4a1c9e0b11"],
                    "documentation": [
                        {"slug": "export-fec", "title": "Export FEC", "markdown": "# Export FEC"}
                    ],
                }
            ]
        },
    )

    version: Line = Field(min_length=1, max_length=64)
    notes: Text = Field(default="", max_length=50_000)
    evolutions: list[uuid.UUID] = Field(default_factory=list, max_length=500)
    documentation: list[DocPageIn] = Field(default_factory=list, max_length=500)

    @field_validator("documentation")
    @classmethod
    def _unique_slugs(cls, pages: list[DocPageIn]) -> list[DocPageIn]:
        slugs = [p.slug for p in pages]
        if len(set(slugs)) != len(slugs):
            raise ValueError("chaque page a son propre slug")
        return pages


class ReleaseOut(BaseModel):
    software: str
    version: str
    notes: str
    released_at: Paris
    evolutions: list[uuid.UUID]
    documentation: list[str]  # the slugs of this version's pages
    notified_requests: int = 0  # requesters told the evolution shipped, this time


class DocPageRef(BaseModel):
    slug: str
    title: str
    published_in: str


class DocVersionOut(BaseModel):
    version: str
    released_at: Paris
    pages: list[DocPageRef]


class DocsIndexOut(BaseModel):
    software: str
    latest: str | None
    versions: list[DocVersionOut]  # newest first


class DocPageOut(BaseModel):
    software: str
    version: str
    latest: bool
    latest_version: str
    slug: str
    title: str
    published_in: str
    markdown: str
    html: str


# --- announcements ------------------------------------------------------------------------------


class AnnouncedEvolution(BaseModel):
    id: uuid.UUID
    title: str
    summary: str
    version: str
    shipped_at: Paris


class AnnouncedRelease(BaseModel):
    version: str
    notes: str
    released_at: Paris


class WeeklyAnnouncement(BaseModel):
    software: str
    software_name: str
    week: str
    week_start: date
    updated: Paris
    evolutions: list[AnnouncedEvolution]
    releases: list[AnnouncedRelease]


class AnnouncementsOut(BaseModel):
    software: str | None
    items: list[WeeklyAnnouncement]  # newest week first
