"""The evolutions service's entry points: `router` (HTTP) and `start(rt)` (background work):
the hand-over responder and the outbox relay (events and mails). The weekly review schedules
of its softwares are kept in its process too, by workflows/review_schedules.py, which the
composition starts with it (composition/parts.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg
from fastapi import APIRouter

from assistance.directory import Role
from assistance.outbox import OutboxRelay
from assistance.parts import Part
from services.evolutions import api, feeds, handover, personal_data
from services.evolutions.mail import MAIL, MailSender
from services.evolutions.repo import assign_product_manager

if TYPE_CHECKING:
    from assistance.runtime import Runtime

__all__ = ["part", "router", "start"]

router = APIRouter()
router.include_router(api.router)
router.include_router(feeds.router)


async def assign_demo_product_manager(
    conn: asyncpg.Connection, users: dict[Role, UUID], softwares: list[str]
) -> None:
    """Demo data (R9): the demo product manager owns every demo software."""
    for code in softwares:
        await assign_product_manager(conn, code, users[Role.product_manager])


def start(rt: Runtime) -> None:
    relay = OutboxRelay(
        rt.pool,
        rt.bus,
        ["evolutions"],
        {MAIL: MailSender(rt.pool, rt.settings)},
        rt.settings.relay_poll_seconds,
    )
    rt.background("evolutions outbox relay", relay.run)
    rt.background("evolutions hand-over", handover.responder(rt.pool, rt.bus).run)


part = Part(
    "evolutions",
    router=router,
    start=start,
    migrations="services.evolutions",
    personal_data=personal_data.HOOKS,
    uses_temporal=True,  # its process keeps the weekly review schedules
    demo=assign_demo_product_manager,
)
