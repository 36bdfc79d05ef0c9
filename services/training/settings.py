"""Training settings (environment variables prefixed `TRAINING_`); the training lead's
address and the screen-sharing room template are shared settings (assistance.settings)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrainingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINING_", env_file=".env", extra="ignore")

    # R7: how long an appointment lasts, and the grid its start times fall on.
    appointment_minutes: int = Field(default=60, ge=15, le=480)
    slot_step_minutes: int = Field(default=30, ge=5, le=240)
    # The least time between a booking and its start, so the trainer can read the brief.
    notice_minutes: int = Field(default=30, ge=0, le=24 * 60)
    # No slot today or the next business day: how many alternatives the lead is offered,
    # searched over this many business days after the window.
    alternatives: int = Field(default=3, ge=1, le=20)
    alternatives_business_days: int = Field(default=10, ge=1, le=60)
    # How many earlier dossiers and trainings of the client the brief lists (engagement 4).
    history_limit: int = Field(default=10, ge=1, le=100)

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.appointment_minutes)

    @property
    def step(self) -> timedelta:
        return timedelta(minutes=self.slot_step_minutes)

    @property
    def notice(self) -> timedelta:
        return timedelta(minutes=self.notice_minutes)
