"""Training payloads: the hand-over from the dossier workflow, the trainers' API, the brief."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from assistance.handover import HandOver
from assistance.text import Line, Text

AppointmentStatus = Literal["booked", "held", "missed", "cancelled"]
RequestStatus = Literal["pending", "booked", "unavailable", "cancelled"]


def _plausible(moment: datetime) -> datetime:
    """Times far outside the service's life are typos; refused before any arithmetic."""
    if not 2000 <= moment.year <= 2100:
        raise ValueError("date hors des limites (années 2000 à 2100)")
    return moment


def _stripped(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("ne peut pas être vide")
    return value


class HandOverIn(HandOver):
    """The hand-over contract (assistance/handover.py), on `commands.training.open` (R7)."""

    service: Literal["training"] = "training"


class TrainerProfileIn(BaseModel):
    """A trainer's profile: the softwares they teach (directory codes)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"softwares": ["manao-compta"], "active": True}]},
    )

    softwares: list[Annotated[Line, Field(max_length=100)]] = Field(max_length=50)
    active: bool = True

    @field_validator("softwares")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        return sorted({_stripped(code) for code in v})


class TrainerOut(BaseModel):
    id: uuid.UUID
    name: str
    email: str
    softwares: list[str]
    active: bool


class AbsenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: Text = Field(default="", max_length=500)

    _times = field_validator("starts_at", "ends_at")(_plausible)

    @model_validator(mode="after")
    def _ordered(self) -> AbsenceIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at doit suivre starts_at")
        if self.ends_at - self.starts_at > timedelta(days=366):
            raise ValueError("une absence dure au plus un an")
        return self


class AbsenceOut(BaseModel):
    id: uuid.UUID
    trainer_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    reason: str


class SlotOut(BaseModel):
    trainer_id: uuid.UUID
    trainer_name: str
    starts_at: datetime
    ends_at: datetime


class BriefDossier(BaseModel):
    reference: str
    subject: str | None = None
    software: str | None = None
    kind: str | None = None
    status: str | None = None
    resolution: str | None = None
    received_at: datetime | None = None
    closed_at: datetime | None = None


class BriefTraining(BaseModel):
    reference: str
    software: str
    starts_at: datetime
    trainer_name: str
    status: str
    notes: str | None = None


class Brief(BaseModel):
    """Engagement 4: what the trainer needs to personalise the session."""

    organisation: dict[str, Any] | None = None  # {id, name, context}
    requester: dict[str, str]
    reference: str
    subject: str
    description: str = ""
    context: str = ""  # the client's work context (R5)
    need: str = ""  # the technical need (R5)
    software: str
    version: str | None = None
    previous_dossiers: list[BriefDossier] = []
    previous_trainings: list[BriefTraining] = []
    text: str = ""  # the same, as French prose for the trainer's invitation


class AppointmentOut(BaseModel):
    id: uuid.UUID
    request_id: uuid.UUID
    dossier_id: uuid.UUID
    reference: str
    software: str
    trainer: dict[str, Any]  # {id, name}
    requester: dict[str, str]  # {email, name}
    starts_at: datetime
    ends_at: datetime
    status: AppointmentStatus
    sequence: int
    link: str
    notes: str | None
    outcome_at: datetime | None
    brief: Brief


class AppointmentPage(BaseModel):
    items: list[AppointmentOut]
    total: int


class TrainingRequestOut(BaseModel):
    id: uuid.UUID
    dossier_id: uuid.UUID
    attempt: int
    reference: str
    software: str
    status: RequestStatus
    alternatives: list[SlotOut]
    appointment_id: uuid.UUID | None
    received_at: datetime


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime
    trainer_id: uuid.UUID | None = Field(default=None, description="Changer de formateur.")
    reason: Text = Field(default="", max_length=2000)

    _times = field_validator("starts_at")(_plausible)


class ManualBookingIn(BaseModel):
    """The training lead books a slot by hand (e.g. one of the alternatives)."""

    model_config = ConfigDict(extra="forbid")

    trainer_id: uuid.UUID
    starts_at: AwareDatetime

    _times = field_validator("starts_at")(_plausible)


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(min_length=1, max_length=2000)

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        return _stripped(v)


class HeldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: Text = Field(min_length=1, max_length=20_000, description="Ce qui a été vu.")

    @field_validator("notes")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        return _stripped(v)


class MissedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: Text = Field(default="", max_length=20_000)
