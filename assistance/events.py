"""Events are facts, in the past tense, with a versioned envelope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field


class Event(BaseModel):
    """The envelope of every message on the bus: `<service>.<entity>.<past-tense event>`."""

    id: str  # also the Nats-Msg-Id: the same fact published twice is stored once
    type: str  # the subject
    version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    data: dict[str, Any] = Field(default_factory=dict)
