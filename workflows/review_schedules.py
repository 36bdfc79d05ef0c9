"""R9: one Temporal Schedule per software runs its weekly review, at a local day and time.

The schedule's calendar is in the review's time zone (Europe/Paris by default), so the review
stays at 10:00 local across daylight-saving changes. Creating is idempotent: a schedule that
already exists is updated to the configured spec, action and policy.

The day, the time and the zone are the evolutions service's settings; the schedules are kept
by the process running that service (the composition starts `start` with it:
composition/parts.py), here with the workflow they start, which the service does not import.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import asyncpg
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
)

from assistance import directory, telemetry, temporal
from services.evolutions.domain import ReviewSlot
from services.evolutions.review_types import WeeklyReviewInput
from services.evolutions.settings import EvolutionsSettings, get_evolutions_settings
from workflows.weekly_review import WeeklyReviewWorkflow

if TYPE_CHECKING:
    from assistance.runtime import Runtime

log = logging.getLogger(__name__)


def schedule_id(software: str) -> str:
    return f"weekly-review-{software}"


def review_spec(slot: ReviewSlot, zone: str) -> ScheduleSpec:
    """Every week on the slot's day, at its local time in `zone` (R9)."""
    return ScheduleSpec(
        calendars=[
            ScheduleCalendarSpec(
                second=[ScheduleRange(0)],
                minute=[ScheduleRange(slot.minute)],
                hour=[ScheduleRange(slot.hour)],
                day_of_week=[ScheduleRange(slot.temporal_day_of_week)],
                comment="weekly product review (R9)",
            )
        ],
        time_zone_name=zone,
    )


def review_schedule(software: str, slot: ReviewSlot, zone: str, task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WeeklyReviewWorkflow.run,
            WeeklyReviewInput(software=software),
            id=schedule_id(software),  # Temporal appends the scheduled time
            task_queue=task_queue,
            execution_timeout=timedelta(days=6),
        ),
        spec=review_spec(slot, zone),
        # A review missed while Temporal was away is still held the same day; never two at once.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


async def ensure_schedule(client: Client, software: str, schedule: Schedule) -> None:
    """Create the software's schedule, or bring an existing one up to date."""
    await temporal.ensure_schedule(client, schedule_id(software), schedule)


class ScheduleKeeper:
    """Keeps one schedule per software of the catalogue (new softwares included)."""

    def __init__(
        self, pool: asyncpg.Pool, client: Client, settings: EvolutionsSettings, task_queue: str
    ) -> None:
        self.pool = pool
        self.client = client
        self.settings = settings
        self.task_queue = task_queue
        self.ensured: set[str] = set()

    async def ensure_all(self) -> list[str]:
        """Ensure the schedules not yet ensured by this process; returns those it did."""
        done = []
        for software in await directory.software_codes(self.pool):
            if software in self.ensured:
                continue
            schedule = review_schedule(
                software,
                self.settings.review_slot(software),
                self.settings.review_timezone,
                self.task_queue,
            )
            await ensure_schedule(self.client, software, schedule)
            self.ensured.add(software)
            done.append(software)
        return done

    async def run(self) -> None:
        while True:
            with telemetry.quiet():  # polled housekeeping: no span
                await self.ensure_all()
            await asyncio.sleep(self.settings.schedule_refresh_seconds)


def start(rt: Runtime) -> None:
    """Keep the weekly review schedules of every software, in the background."""
    assert rt.temporal is not None
    keeper = ScheduleKeeper(
        rt.pool, rt.temporal, get_evolutions_settings(), rt.settings.temporal_task_queue
    )
    rt.background("evolutions review schedules", keeper.run)
