"""WeeklyReviewWorkflow with time skipping: the review is held at the time the schedule
starts it (workflow time), and a failing activity is retried until the agenda is built."""

from __future__ import annotations

import uuid

from temporalio import activity
from temporalio.worker import Worker

from services.evolutions.review_types import (
    BUILD_AGENDA,
    ReviewOrder,
    ReviewSummary,
    WeeklyReviewInput,
)
from tests.workflows.harness import paris, skip_to, time_skipping
from workflows.weekly_review import WeeklyReviewWorkflow


class FakeAgenda:
    def __init__(self, failures: int = 0) -> None:
        self.orders: list[ReviewOrder] = []
        self.failures = failures

    @activity.defn(name=BUILD_AGENDA)
    async def build(self, order: ReviewOrder) -> ReviewSummary:
        self.orders.append(order)
        if len(self.orders) <= self.failures:
            raise RuntimeError("database away")
        return ReviewSummary("r-1", order.software, "2027-W13", 2, 1, 1, ["produit@manao.eu"])


async def test_review_is_held_at_workflow_time_and_retried_until_built() -> None:
    fake = FakeAgenda(failures=2)
    async with time_skipping() as env:
        queue = f"reviews-{uuid.uuid4().hex[:8]}"
        async with Worker(
            env.client, task_queue=queue, workflows=[WeeklyReviewWorkflow], activities=[fake.build]
        ):
            held = paris("2027-03-29T10:00:00")  # the Monday after the spring DST change
            await skip_to(env, held)
            summary = await env.client.execute_workflow(
                WeeklyReviewWorkflow.run,
                WeeklyReviewInput(software="manao-compta"),
                id=f"weekly-review-manao-compta-{uuid.uuid4().hex[:6]}",
                task_queue=queue,
            )
    assert summary == ReviewSummary(
        "r-1", "manao-compta", "2027-W13", 2, 1, 1, ["produit@manao.eu"]
    )
    assert len(fake.orders) == 3  # two failures, then built
    assert {o.software for o in fake.orders} == {"manao-compta"}
    # the same review time on every attempt (the workflow's, not the activity's clock)
    assert len({o.held_at for o in fake.orders}) == 1
    assert held <= fake.orders[0].held_at < held.replace(second=5)
