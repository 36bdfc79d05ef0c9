"""The dossier service's background part: projecting events into the read model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistance.parts import Part
from services.dossier import metrics
from services.dossier.api import router
from services.dossier.projection import Projector

__all__ = ["part", "router", "start"]

if TYPE_CHECKING:
    from assistance.runtime import Runtime


def start(rt: Runtime) -> None:
    projector = Projector(rt.pool)

    async def consume(durable: str, subjects: list[str]) -> None:
        await rt.bus.consume(durable, subjects, projector, pool=rt.pool)

    rt.background("dossier projection", lambda: consume("dossier-projection", ["dossier.>"]))
    rt.background(
        "dossier intake projection",
        lambda: consume("dossier-intake", ["intake.request.received"]),
    )
    rt.observe(metrics.reader(rt.pool, rt.calendar, rt.settings.commitment()))


part = Part(
    "dossier",
    router=router,
    start=start,
    migrations="services.dossier",
    uses_temporal=True,
    sends_commands=True,
)
