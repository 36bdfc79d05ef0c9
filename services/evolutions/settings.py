"""The evolutions service's own settings (environment variables prefixed `EVOLUTIONS_`)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.evolutions.domain import ReviewSlot


class EvolutionsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVOLUTIONS_", env_file=".env", extra="ignore")

    # R9: when the weekly review of each software is held, e.g. "monday 10:00" (local time).
    review_at: str = "monday 10:00"
    # Per software, e.g. {"manao-paie": "tuesday 14:30"} (JSON in the environment).
    review_at_by_software: dict[str, str] = Field(default_factory=dict)
    review_timezone: str = "Europe/Paris"
    # How often the schedules are checked against the catalogue of softwares.
    schedule_refresh_seconds: float = Field(default=300.0, gt=0)
    # The authority of the feeds' tag: URIs (RFC 4151); keep it stable once published.
    feed_tag_authority: str = "assistance.manao.eu,2026"
    # How many ISO weeks of announcements the page and the feed show.
    announcement_weeks: int = Field(default=12, ge=1, le=520)

    def review_slot(self, software: str) -> ReviewSlot:
        """When the weekly review of `software` is held (R9)."""
        return ReviewSlot.parse(self.review_at_by_software.get(software, self.review_at))


@lru_cache
def get_evolutions_settings() -> EvolutionsSettings:
    return EvolutionsSettings()
