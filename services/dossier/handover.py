"""The dossier's side of the hand-over to training, bugs and evolutions (R7–R9).

A NATS request on `commands.<service>.open`, the trace context in its headers; the service's
responder (assistance/handover.py) answers once it has durably recorded the dossier
(idempotent on the dossier id and attempt). Its later facts come back as events.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from assistance import telemetry
from assistance.bus import Bus
from assistance.handover import command_subject
from services.dossier.state import HandOver


class HandOverActivities:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    @activity.defn(name="hand_over")
    async def hand_over(self, order: HandOver) -> dict[str, Any]:
        if self.bus.nc is None or not self.bus.connected:
            raise ApplicationError("NATS is not connected")  # retried
        reply = await self.bus.nc.request(
            command_subject(order.service),
            json.dumps(asdict(order), default=str).encode(),
            timeout=10,
            headers=telemetry.inject(),
        )
        answer: dict[str, Any] = json.loads(reply.data)
        if not answer.get("ok"):
            raise ApplicationError(f"{order.service} refused the hand-over: {answer}")
        return answer
