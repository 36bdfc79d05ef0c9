"""What every training use case works with: the pool, the settings, the calendar, a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import asyncpg

from assistance.business_time import BusinessCalendar
from assistance.settings import Settings
from services.training.domain import SlotPolicy
from services.training.settings import TrainingSettings


def utc_now() -> datetime:
    return datetime.now(UTC)


@lru_cache
def training_options() -> TrainingSettings:
    return TrainingSettings()


@dataclass(frozen=True)
class Context:
    pool: asyncpg.Pool
    settings: Settings
    calendar: BusinessCalendar
    options: TrainingSettings = field(default_factory=training_options)
    clock: Callable[[], datetime] = utc_now

    @property
    def policy(self) -> SlotPolicy:
        o = self.options
        return SlotPolicy(
            duration=o.duration,
            step=o.step,
            notice=o.notice,
            alternatives=o.alternatives,
            alternatives_days=o.alternatives_business_days,
        )

    @property
    def lead(self) -> str:
        """The training lead, alerted when no slot exists (R7: never a silent slip)."""
        return self.settings.training_lead_email
