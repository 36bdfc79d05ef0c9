"""The Temporal worker: runs DossierWorkflow, the weekly reviews and the daily RGPD retention,
and their activities, on the task queue."""

from __future__ import annotations

import compileall
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio.worker import Worker

from assistance import temporal as temporal_client
from assistance.activity_failures import ActivityFailures
from services.dossier import domain, process
from services.dossier.activities import DossierActivities
from services.dossier.handover import HandOverActivities
from services.evolutions.activities import ReviewActivities
from services.operations.retention import RetentionActivities
from workflows.dossier import DossierWorkflow
from workflows.retention import PersonalDataRetentionWorkflow
from workflows.weekly_review import WeeklyReviewWorkflow

if TYPE_CHECKING:
    from assistance.app import Runtime
    from assistance.settings import Settings

WORKFLOWS = [DossierWorkflow, WeeklyReviewWorkflow, PersonalDataRetentionWorkflow]


def activities(rt: Runtime) -> list[Callable[..., Any]]:
    dossier = DossierActivities(rt.bus, rt.pool, rt.settings)
    handover = HandOverActivities(rt.bus)
    review = ReviewActivities(rt.pool, rt.settings)
    retention = RetentionActivities(rt.pool, rt.bus, rt.settings, rt.personal_data)
    return [
        dossier.publish_event,
        dossier.send_mail,
        dossier.notify_staff,
        dossier.record_step,
        handover.hand_over,
        review.build_weekly_review,
        retention.retention_batch,
    ]


def compile_workflows() -> None:
    """The sandbox imports the workflow modules, the dossier process and its rules afresh for
    every workflow run: with their bytecode cached that costs a few milliseconds, without it
    (PYTHONDONTWRITEBYTECODE, a read-only install) a full compile each time. Write the cache
    once, at start."""
    compileall.compile_dir(Path(__file__).parent, quiet=1, maxlevels=0)
    for module in (process, domain):
        compileall.compile_file(module.__file__ or "", quiet=1)


def _drain_seconds(settings: Settings) -> float:
    grace = settings.shutdown_grace_seconds
    return max(grace - 1.0, grace / 2)


def start(rt: Runtime) -> None:
    compile_workflows()

    async def run() -> None:
        settings = rt.settings
        runtime = None
        if settings.temporal_metrics_port:  # the SDK's metrics, Prometheus on their own port
            runtime = temporal_client.metrics_runtime(
                f"{settings.http_host}:{settings.temporal_metrics_port}"
            )
        client = await temporal_client.connect(
            settings.temporal_address, settings.temporal_namespace, lazy=False, runtime=runtime
        )
        worker = Worker(
            client,
            task_queue=rt.settings.temporal_task_queue,
            workflows=WORKFLOWS,
            activities=activities(rt),
            interceptors=[ActivityFailures(rt.pool, rt.bus.policy)],
            # at the stop: no new task is polled, running activities get the grace to finish
            # (cancelled only then, a second before the process's own bound, so that their
            # cancellation reaches Temporal): a rolling restart does not cut them off at once
            graceful_shutdown_timeout=timedelta(seconds=_drain_seconds(settings)),
        )
        rt.on_stop(worker.shutdown)
        await worker.run()

    rt.background("temporal worker", run)
