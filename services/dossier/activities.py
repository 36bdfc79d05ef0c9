"""Thin Temporal adapters for the dossier workflow's side effects."""

from __future__ import annotations

from temporalio import activity

from assistance.bus import Bus
from assistance.events import Event


class DossierActivities:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    @activity.defn(name="publish_dossier_event")
    async def publish_event(self, event: Event) -> None:
        """Publish a fact; idempotent through its `Nats-Msg-Id` (= `<dossier id>:<step>`)."""
        await self.bus.publish(event)
