"""Intake payloads: what the site form, the phone log and the mail receiver hand in."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from assistance.text import Line, Text

Channel = Literal["web", "mail", "phone"]


class Requester(BaseModel):
    email: EmailStr = Field(description="Adresse du demandeur : les réponses y sont envoyées.")
    name: Line = Field(min_length=1, max_length=200)

    @field_validator("name")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("le nom ne peut pas être vide")
        return v


class DepositIn(BaseModel):
    """A request deposited on the site (R1), 24/7 (R13)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "requester": {"email": "claire.martin@dupont-sa.fr", "name": "Claire Martin"},
                    "software": "manao-compta",
                    "subject": "Export FEC impossible",
                    "description": "Depuis ce matin l'export FEC s'arrête à 50 %.",
                }
            ]
        },
    )

    requester: Requester
    software: Line = Field(min_length=1, max_length=100, description="Code du logiciel concerné.")
    subject: Line = Field(min_length=1, max_length=200)
    description: Text = Field(min_length=1, max_length=20_000)
    organisation: Line | None = Field(
        max_length=100, default=None, description="Identifiant de l'organisation, si connu."
    )

    @field_validator("subject", "description", "software")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("ne peut pas être vide")
        return v.strip()


class CallIn(DepositIn):
    """A phone request logged by the technician who took the call (R1)."""

    caller_phone: Line = Field(min_length=3, max_length=40, pattern=r"^[0-9+().\s-]+$")


class DepositOut(BaseModel):
    id: uuid.UUID
    reference: str
    status: str
    received_at: datetime
    first_response_due: datetime
