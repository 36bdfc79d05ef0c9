"""The evolutions service's entry points: `router` (HTTP) and `start(rt)` (background work):
the hand-over responder, the outbox relay (events and mails) and the weekly review schedules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

from assistance.outbox import OutboxRelay
from services.evolutions import api, feeds, handover
from services.evolutions.mail import MAIL, MailSender
from services.evolutions.schedules import ScheduleKeeper
from services.evolutions.settings import get_evolutions_settings

if TYPE_CHECKING:
    from assistance.app import Runtime

__all__ = ["router", "start"]

router = APIRouter()
router.include_router(api.router)
router.include_router(feeds.router)


def start(rt: Runtime) -> None:
    assert rt.temporal is not None
    relay = OutboxRelay(
        rt.pool,
        rt.bus,
        ["evolutions"],
        {MAIL: MailSender(rt.pool, rt.settings)},
        rt.settings.relay_poll_seconds,
    )
    rt.background("evolutions outbox relay", relay.run)
    rt.background("evolutions hand-over", handover.responder(rt.pool, rt.bus).run)
    keeper = ScheduleKeeper(
        rt.pool, rt.temporal, get_evolutions_settings(), rt.settings.temporal_task_queue
    )
    rt.background("evolutions review schedules", keeper.run)
