"""Intake's background part: the outbox relay."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistance.outbox import OutboxRelay
from services.intake.api import router
from services.intake.relay import START_DOSSIER, dossier_starter

__all__ = ["router", "start"]

if TYPE_CHECKING:
    from assistance.app import Runtime


def start(rt: Runtime) -> None:
    assert rt.temporal is not None
    relay = OutboxRelay(
        rt.pool,
        rt.bus,
        ["intake"],
        {START_DOSSIER: dossier_starter(rt.temporal, rt.settings.temporal_task_queue)},
        rt.settings.relay_poll_seconds,
    )
    rt.background("intake outbox relay", relay.run)
