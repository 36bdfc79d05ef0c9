"""Thin Temporal adapters for the weekly review (R9)."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from assistance.settings import Settings
from services.evolutions import reviews
from services.evolutions.review_types import BUILD_AGENDA, ReviewOrder, ReviewSummary
from services.evolutions.settings import EvolutionsSettings, get_evolutions_settings


class ReviewActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        evolutions: EvolutionsSettings | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.evolutions = evolutions or get_evolutions_settings()

    @activity.defn(name=BUILD_AGENDA)
    async def build_weekly_review(self, order: ReviewOrder) -> ReviewSummary:
        """Build, store, mail and announce the week's agenda, in one transaction (idempotent
        per software and ISO week)."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await reviews.build_review(
                conn, order, self.settings, self.evolutions.review_timezone
            )
