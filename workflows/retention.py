"""PersonalDataRetentionWorkflow: RGPD retention (issue 13 item 5, decision 0024).

Started every day by the Temporal Schedule `personal-data-retention` (services/operations/
retention.py keeps it). It calls one activity again and again, each call erasing one bounded
batch of the dossiers closed more than `PERSONAL_DATA_RETENTION_DAYS` (plus the reopen window)
ago and finishing the clean-ups an earlier erasure left (Temporal histories, NATS messages),
until a batch finds nothing more or `max_batches` is reached (tomorrow's run goes on).

An activity failing for good is parked like every other (docs/decisions/0013): the worker's
interceptor puts it in `bus.parked` at its last attempt, and the run ends with `parked`; an
administrator's retry of the parked item triggers the schedule again.

The activity takes and answers plain dicts: the workflow and the operations service share no
module (the architecture test keeps services.operations out of the workflows' import cycle).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

# the activity's name, as services/operations/retention.py registers it
RETENTION_BATCH = "personal_data_retention_batch"
ATTEMPTS = 5


@dataclass
class RetentionInput:
    max_batches: int = 100


@dataclass
class RetentionSummary:
    batches: int = 0
    erased: int = 0
    cleaned: int = 0
    parked: bool = False


@workflow.defn(name="PersonalDataRetentionWorkflow")
class PersonalDataRetentionWorkflow:
    @workflow.run
    async def run(self, params: RetentionInput) -> RetentionSummary:
        summary = RetentionSummary()
        while summary.batches < params.max_batches:
            try:
                done: dict[str, Any] = await workflow.execute_activity(
                    RETENTION_BATCH,
                    {"now": workflow.now().isoformat()},
                    result_type=dict,
                    start_to_close_timeout=timedelta(minutes=10),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(seconds=5),
                        backoff_coefficient=2.0,
                        maximum_interval=timedelta(minutes=5),
                        maximum_attempts=ATTEMPTS,
                    ),
                )
            except ActivityError:
                summary.parked = True  # parked by the worker's interceptor; retried by hand
                return summary
            summary.batches += 1
            summary.erased += int(done.get("erased", 0))
            summary.cleaned += int(done.get("cleaned", 0))
            if not done.get("more"):
                break
        return summary
