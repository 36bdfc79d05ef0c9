"""The bugs service's own settings (environment variables prefixed `BUGS_`)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BugsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BUGS_", env_file=".env", extra="ignore")

    # R2: a bug the developers owe a move on is escalated to the admins after this many
    # business hours without their activity (once per quiet period).
    escalation_hours: float = Field(default=16.0, gt=0)
    # How often the follow-through check runs.
    escalation_check_seconds: float = Field(default=60.0, gt=0)


@lru_cache
def get_bugs_settings() -> BugsSettings:
    return BugsSettings()
