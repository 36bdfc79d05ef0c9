"""The dossier service's background part: projecting events into the read model, and relaying
the dossiers' steps (their events and mails, written to the outbox by the workflow's
`record_dossier_step` activity) to NATS and the mail server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistance.outbox import OutboxRelay
from assistance.parts import Part
from services.dossier import metrics, personal_data
from services.dossier.activities import MAIL, SOURCE, mail_sender
from services.dossier.api import router
from services.dossier.projection import Projector

__all__ = ["part", "router", "start"]

if TYPE_CHECKING:
    from assistance.runtime import Runtime


def start(rt: Runtime) -> None:
    projector = Projector(rt.pool)
    relay = OutboxRelay(
        rt.pool,
        rt.bus,
        [SOURCE],
        {MAIL: mail_sender(rt.pool, rt.settings)},
        rt.settings.relay_poll_seconds,
    )
    rt.background("dossier outbox relay", relay.run)

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
    personal_data=personal_data.HOOKS,
    uses_temporal=True,
    sends_commands=True,
)
