"""The bugs service's entry points: `router` (HTTP) and `start(rt)` (background work):
the hand-over responder, the outbox relay, the consumers and the follow-through check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistance.outbox import OutboxRelay
from assistance.parts import Part
from services.bugs import handover, personal_data
from services.bugs.api import router
from services.bugs.consumers import (
    DOSSIER_SUBJECTS,
    DOSSIERS,
    RELEASE_SUBJECTS,
    RELEASES,
    DossierConsumer,
    ReleaseConsumer,
)
from services.bugs.escalation import Escalator
from services.bugs.repo import SOURCE
from services.bugs.settings import get_bugs_settings

__all__ = ["part", "router", "start"]

if TYPE_CHECKING:
    from assistance.runtime import Runtime


def start(rt: Runtime) -> None:
    relay = OutboxRelay(rt.pool, rt.bus, [SOURCE], poll_seconds=rt.settings.relay_poll_seconds)
    rt.background("bugs outbox relay", relay.run)
    rt.background("bugs hand-over", handover.responder(rt.pool, rt.bus).run)
    releases, dossiers = ReleaseConsumer(rt.pool), DossierConsumer(rt.pool)
    rt.background(
        "bugs releases", lambda: rt.bus.consume(RELEASES, RELEASE_SUBJECTS, releases, pool=rt.pool)
    )
    rt.background(
        "bugs dossiers", lambda: rt.bus.consume(DOSSIERS, DOSSIER_SUBJECTS, dossiers, pool=rt.pool)
    )
    escalator = Escalator(rt.pool, rt.settings, get_bugs_settings(), rt.calendar)
    rt.background("bugs follow-through", escalator.run)


part = Part(
    "bugs",
    router=router,
    start=start,
    migrations="services.bugs",
    personal_data=personal_data.HOOKS,
)
