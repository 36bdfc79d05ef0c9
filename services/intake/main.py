"""Intake's background parts: the outbox relay, the mail receiver, the optional IMAP poller."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistance.outbox import OutboxRelay
from assistance.parts import Part
from services.intake import personal_data
from services.intake.api import router
from services.intake.mail import imap, receiver
from services.intake.mail.ingest import MailIngestor
from services.intake.relay import (
    SEND_MAIL,
    SIGNAL_DOSSIER,
    START_DOSSIER,
    mail_sender,
    requarantining,
)

__all__ = ["part", "router", "start"]

if TYPE_CHECKING:
    from assistance.runtime import Runtime


def start(rt: Runtime) -> None:
    relay = OutboxRelay(
        rt.pool,
        rt.bus,
        ["intake"],
        {
            START_DOSSIER: rt.sender(START_DOSSIER),
            SIGNAL_DOSSIER: requarantining(rt.sender(SIGNAL_DOSSIER), rt.pool),
            SEND_MAIL: mail_sender(rt.settings, rt.pool),
        },
        rt.settings.relay_poll_seconds,
    )
    rt.background("intake outbox relay", relay.run)
    ingestor = MailIngestor(rt.pool, rt.settings, rt.calendar)
    for listener in receiver.receivers(ingestor, rt.settings):
        rt.background(listener.name, listener.serve)
    if rt.settings.imap_host:
        rt.background("intake imap poller", imap.ImapPoller(ingestor, rt.settings).run)


part = Part(
    "intake",
    router=router,
    start=start,
    migrations="services.intake",
    personal_data=personal_data.HOOKS,
    uses_temporal=True,
    takes_deposits=True,
)
