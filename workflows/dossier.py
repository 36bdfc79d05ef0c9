"""DossierWorkflow: one per dossier, from opening to closure (R2).

Workflow id = dossier id. Publishes every transition as a `dossier.*` event.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from assistance.events import Event
    from services.dossier.activities import DossierActivities
    from workflows.types import DossierOpening

PUBLISH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)


@workflow.defn
class DossierWorkflow:
    @workflow.init
    def __init__(self, opening: DossierOpening) -> None:
        self.opening = opening
        self.status = "new"
        self.step = 0

    @workflow.run
    async def run(self, opening: DossierOpening) -> str:
        await self._emit(
            "opened",
            set=self._opening_data(),
            timeline={"kind": "opened", "visibility": "internal", "text": "Dossier ouvert."},
        )
        await workflow.wait_condition(lambda: self.status == "closed")
        return self.status

    @workflow.query
    def current_status(self) -> str:
        return self.status

    def _opening_data(self) -> dict[str, Any]:
        o = self.opening
        return {
            "dossier_id": o.dossier_id,
            "reference": o.reference,
            "channel": o.channel,
            "requester_email": o.requester_email,
            "requester_name": o.requester_name,
            "organisation_id": o.organisation_id,
            "software": o.software,
            "subject": o.subject,
            "description": o.description,
            "received_at": o.received_at.isoformat(),
            "first_response_due": o.first_response_due.isoformat(),
            "technician_id": o.technician_id,
            "status": self.status,
        }

    async def _emit(
        self,
        what: str,
        *,
        set: dict[str, Any] | None = None,
        timeline: dict[str, Any] | None = None,
        **facts: Any,
    ) -> None:
        """Publish `dossier.dossier.<what>`: the read-model fields it sets, its timeline entry."""
        self.step += 1
        event = Event(
            id=f"{self.opening.dossier_id}:{self.step}",
            type=f"dossier.dossier.{what}",
            occurred_at=workflow.now(),
            data={
                **facts,
                "dossier_id": self.opening.dossier_id,
                "seq": self.step,
                "set": set or {},
                "timeline": timeline,
            },
        )
        await workflow.execute_activity_method(
            DossierActivities.publish_event,
            event,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=PUBLISH_RETRY,
        )
