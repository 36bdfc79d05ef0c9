"""The signal bridge: facts from the training, bugs and evolutions services reach the
workflows of the dossiers they concern (`dossier_id` or `dossier_ids` in the event)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from assistance.events import Event

if TYPE_CHECKING:
    from assistance.app import Runtime

log = logging.getLogger(__name__)

SOURCES = {"training": "training.>", "bugs": "bugs.>", "evolutions": "evolutions.>"}


def dossiers_of(event: Event) -> list[str]:
    ids = list(event.data.get("dossier_ids") or [])
    if event.data.get("dossier_id"):
        ids.append(event.data["dossier_id"])
    return list(dict.fromkeys(str(i) for i in ids))


class SignalBridge:
    def __init__(self, client: Client) -> None:
        self.client = client

    async def __call__(self, event: Event) -> None:
        for dossier_id in dossiers_of(event):
            try:
                await self.client.get_workflow_handle(dossier_id).signal("service_event", event)
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    log.info("dossier %s has no running workflow for %s", dossier_id, event.type)
                    continue  # closed long ago: nothing left to tell
                raise  # redelivered by the bus


def start(rt: Runtime) -> None:
    assert rt.temporal is not None
    bridge = SignalBridge(rt.temporal)
    for service, subject in SOURCES.items():

        async def consume(durable: str = f"dossier-bridge-{service}", s: str = subject) -> None:
            await rt.bus.consume(durable, [s], bridge, pool=rt.pool)

        rt.background(f"signal bridge ({service})", consume)
