"""RGPD retention (issue 13 item 5, decision 0024): every day, the personal data of the dossiers
closed more than `PERSONAL_DATA_RETENTION_DAYS` ago (plus the reopen window) is erased as an
erasure request would (services/operations/erasure.py), one bounded batch per activity call.

The daily Temporal Schedule `personal-data-retention` (Paris time) starts
`PersonalDataRetentionWorkflow` (workflows/retention.py), named by its string: this service does
not import the workflows. The activity is registered by the worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from temporalio import activity
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

from assistance import telemetry, temporal
from assistance.bus import Bus
from assistance.personal_data import PersonalData
from assistance.settings import Settings
from services.operations import erasure

log = logging.getLogger(__name__)

SCHEDULE_ID = "personal-data-retention"
WORKFLOW = "PersonalDataRetentionWorkflow"  # workflows/retention.py
RETENTION_BATCH = "personal_data_retention_batch"  # the name the workflow calls


async def run_batch(
    pool: asyncpg.Pool,
    temporal: Client | None,
    bus: Bus | None,
    settings: Settings,
    holders: Sequence[PersonalData],
    now: datetime,
) -> dict[str, Any]:
    """One batch: erase the oldest dossiers due (in one transaction), then delete their
    histories and messages, and finish the clean-ups earlier erasures left pending."""
    limit = settings.personal_data_retention_batch
    cutoff = erasure.retention_cutoff(
        now, settings.personal_data_retention_days, settings.reopen_window_days
    )
    async with pool.acquire() as conn, conn.transaction():
        due = await erasure.due_for_retention(conn, cutoff, limit, holders)
        done = await erasure.erase_dossiers(conn, due, holders, now)
    pending = await erasure.pending_clean_ups(pool, limit, holders)
    cleaned = await erasure.clean_up(pool, temporal, bus, pending, holders)
    if cleaned.pending:
        # raised so the activity retries, and is parked at its last attempt (decision 0013)
        raise RuntimeError(f"retention: {', '.join(cleaned.pending)} unavailable")
    return {
        "erased": len(due),
        "cleaned": len(pending),
        "counts": done.counts,
        "workflows_deleted": cleaned.workflows_deleted,
        "stream_messages_deleted": cleaned.stream_messages_deleted,
        "more": len(due) == limit,
    }


class RetentionActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: Bus,
        settings: Settings,
        holders: Sequence[PersonalData],
    ) -> None:
        self.pool = pool
        self.bus = bus
        self.settings = settings
        self.holders = holders  # every part's personal data hooks (Runtime.personal_data)

    @activity.defn(name=RETENTION_BATCH)
    async def retention_batch(self, order: dict[str, Any]) -> dict[str, Any]:
        now = datetime.fromisoformat(order["now"]) if order.get("now") else datetime.now(UTC)
        return await run_batch(
            self.pool, activity.client(), self.bus, self.settings, self.holders, now
        )


# --- the daily schedule ---------------------------------------------------------------------


def retention_schedule(settings: Settings) -> Schedule:
    hour, minute = (int(x) for x in settings.personal_data_retention_at.split(":"))
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW,
            {"max_batches": 100},
            id=SCHEDULE_ID,  # Temporal appends the scheduled time
            task_queue=settings.temporal_task_queue,
            execution_timeout=timedelta(hours=23),
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    second=[ScheduleRange(0)],
                    minute=[ScheduleRange(minute)],
                    hour=[ScheduleRange(hour)],
                    comment="RGPD retention (decision 0024)",
                )
            ],
            time_zone_name=settings.business_timezone,
        ),
        # one run at a time; a day missed while Temporal was away runs when it is back
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


async def ensure_schedule(client: Client, settings: Settings) -> None:
    """Create the schedule, or bring an existing one up to date."""
    await temporal.ensure_schedule(client, SCHEDULE_ID, retention_schedule(settings))


async def keep_schedule(client: Client, settings: Settings) -> None:
    """Ensure the schedule once Temporal answers (retrying while it does not), then rest."""
    delay = 1.0
    while True:
        try:
            with telemetry.quiet():
                await ensure_schedule(client, settings)
            break
        except Exception as exc:  # noqa: BLE001 - Temporal away: tried again
            log.warning("retention schedule not ensured yet: %r", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
    await asyncio.Event().wait()  # done; stay parked so supervise does not rerun it


async def trigger(client: Client) -> None:
    """Run the retention now (an administrator's retry of a parked retention batch)."""
    await client.get_schedule_handle(SCHEDULE_ID).trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
