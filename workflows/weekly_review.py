"""WeeklyReviewWorkflow: the weekly product review of one software (R9).

Started by a Temporal Schedule per software (`weekly-review-<software>`, day and time in
Europe/Paris, see services/evolutions/schedules.py). One activity builds the week's agenda —
the new requests since the last review, grouped, with their clients, and the undecided ones
carried over — stores it, mails it to the software's product managers and to the technicians,
and publishes `evolutions.request.reviewed`, all in one transaction. The review is keyed by
software and ISO week, so a retried or re-triggered run builds the agenda once.

No signals, updates or queries: the run is short; its result is the review's summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

BUILD_AGENDA = "build_weekly_review"


@dataclass
class WeeklyReviewInput:
    software: str


@dataclass
class ReviewOrder:
    """What the activity builds: the review of `software` held at `held_at`."""

    software: str
    held_at: datetime


@dataclass
class ReviewSummary:
    review_id: str
    software: str
    week: str
    items: int
    new: int
    carried_over: int
    notified: list[str]


@workflow.defn(name="WeeklyReviewWorkflow")
class WeeklyReviewWorkflow:
    @workflow.run
    async def run(self, params: WeeklyReviewInput) -> ReviewSummary:
        # R9: the review is held when the schedule fires; its time is the workflow's own.
        order = ReviewOrder(software=params.software, held_at=workflow.now())
        return await workflow.execute_activity(
            BUILD_AGENDA,
            order,
            result_type=ReviewSummary,
            start_to_close_timeout=timedelta(minutes=2),
            schedule_to_close_timeout=timedelta(days=6),  # never into next week's review
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(minutes=5),
            ),
        )
