"""WeeklyReviewWorkflow: the weekly product review of one software (R9).

Started by a Temporal Schedule per software (`weekly-review-<software>`, day and time in
Europe/Paris, see workflows/review_schedules.py). One activity builds the week's agenda —
the new requests since the last review, grouped, with their clients, and the undecided ones
carried over — stores it, mails it to the software's product managers and to the technicians,
and publishes `evolutions.request.reviewed`, all in one transaction. The review is keyed by
software and ISO week, so a retried or re-triggered run builds the agenda once.

No signals, updates or queries: the run is short; its result is the review's summary. Its
data (input, order, summary) is the evolutions service's (services/evolutions/review_types.py).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from services.evolutions.review_types import (
    BUILD_AGENDA,
    ReviewOrder,
    ReviewSummary,
    WeeklyReviewInput,
)


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
