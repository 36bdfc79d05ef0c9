"""Bugs service payloads: the developer and technician API, and the hand-over it receives."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from assistance.handover import HandOver
from assistance.text import StrippedLine, StrippedText

# The text policy (`assistance.text`): multi-line text and single-line text, trimmed.
Text = Annotated[StrippedText, StringConstraints(min_length=1, max_length=20_000)]
Line = Annotated[StrippedLine, StringConstraints(min_length=1, max_length=500)]
Version = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=50, pattern=r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$"
    ),
]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- what developers and technicians send ----------------------------------------------------


class ReproducedIn(Body):
    """R8: how the bug is reproduced, and where."""

    steps: Text
    environment: Text
    affected_versions: list[Version] = Field(default_factory=list, max_length=50)


class NotReproducibleIn(Body):
    """The questions that go to the technician and the customers of every linked dossier."""

    questions: Text


class DiagnosisIn(Body):
    diagnosis: Text
    affected_versions: list[Version] = Field(default_factory=list, max_length=50)


class FixIn(Body):
    """API.md: the fix is done; the customers are told which version carries it."""

    version: Version
    change_reference: Line
    notes: Annotated[StrippedText, StringConstraints(max_length=20_000)] = ""


class LinkIn(Body):
    """A technician links a dossier to a known bug instead of opening a duplicate."""

    dossier_id: uuid.UUID
    reference: Line | None = None


# --- what the API answers --------------------------------------------------------------------


class Person(BaseModel):
    id: uuid.UUID
    name: str


class Reproduction(BaseModel):
    steps: str
    environment: str


class Fix(BaseModel):
    version: str
    change_reference: str
    notes: str
    completed_at: datetime
    completed_by: str


class FixOut(Fix):
    """The fix as recorded: the same call twice gets the same answer."""

    bug_id: uuid.UUID


class Release(BaseModel):
    version: str
    released_at: datetime


class LinkedDossier(BaseModel):
    dossier_id: uuid.UUID
    reference: str | None
    version: str | None
    via: str
    linked_at: datetime


class Answer(BaseModel):
    dossier_id: uuid.UUID
    author: str | None
    text: str
    at: datetime


class HistoryEntry(BaseModel):
    seq: int
    kind: str
    actor: str | None
    data: dict[str, Any]
    at: datetime


class BugRef(BaseModel):
    id: uuid.UUID
    reference: str
    state: str
    fix_version: str | None
    released_version: str | None


class WorkaroundOut(BaseModel):
    dossier_id: uuid.UUID
    reference: str | None
    software: str | None
    version: str | None
    subject: str | None
    text: str
    recorded_at: datetime
    bug: BugRef | None


class WorkaroundPage(BaseModel):
    items: list[WorkaroundOut]
    total: int


class BugSummary(BaseModel):
    id: uuid.UUID
    reference: str
    software: str
    title: str
    state: str
    state_label: str
    affected_versions: list[str]
    developer: Person | None
    dossier_count: int
    fix_version: str | None
    released_version: str | None
    reported_at: datetime
    last_activity_at: datetime


class BugOut(BugSummary):
    description: str
    reproduction: Reproduction | None
    questions: str | None
    answers: list[Answer]
    diagnosis: str | None
    fix: Fix | None
    release: Release | None
    duplicate_of: uuid.UUID | None
    previous_bug_id: uuid.UUID | None
    dossiers: list[LinkedDossier]
    workarounds: list[WorkaroundOut]
    escalations: list[datetime]
    history: list[HistoryEntry]


class BugPage(BaseModel):
    items: list[BugSummary]
    total: int


# --- the hand-over (docs/contracts.md §1) ----------------------------------------------------


class HandOverIn(HandOver):
    """The hand-over contract (assistance/handover.py); `bug_id` names a known bug to link to."""

    service: Literal["bugs"] = "bugs"
    bug_id: uuid.UUID | None = None
