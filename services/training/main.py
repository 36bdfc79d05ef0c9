"""The training service's entry points: `router` (HTTP) and `start(rt)` (background work).

Background work: the responder for `commands.training.open` (the dossier workflow's hand-over,
R7), the outbox relay for this service's events and mails, and the consumer that keeps the
clients' dossier history (DOSSIER stream) for the brief (engagement 4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from assistance.directory import Role
from assistance.outbox import OutboxRelay
from assistance.parts import Part
from services.training import handover, history, mailer, personal_data, repo
from services.training.api import router
from services.training.context import Context

__all__ = ["part", "router", "start"]

if TYPE_CHECKING:
    from assistance.runtime import Runtime


def start(rt: Runtime) -> None:
    ctx = Context(rt.pool, rt.settings, rt.calendar)
    relay = OutboxRelay(
        rt.pool,
        rt.bus,
        [mailer.SOURCE],
        mailer.senders(rt.settings, rt.pool),
        rt.settings.relay_poll_seconds,
    )
    rt.background("training outbox relay", relay.run)
    rt.background("training responder", handover.responder(ctx, rt.bus).run)
    recorder = history.Recorder(rt.pool)

    async def record_history() -> None:
        await rt.bus.consume(history.DURABLE, history.SUBJECTS, recorder, pool=rt.pool)

    rt.background("training dossier history", record_history)


async def teach_demo_softwares(
    conn: asyncpg.Connection, users: dict[Role, UUID], softwares: list[str]
) -> None:
    """Demo data (R7): the demo trainer teaches every demo software, so advanced-usage
    dossiers find a trainer from the first start (issue 14)."""
    trainer = users[Role.trainer]
    row = await conn.fetchrow("SELECT name, email FROM directory.users WHERE id = $1", trainer)
    await repo.save_trainer(conn, trainer, row["name"], row["email"], softwares, True)


part = Part(
    "training",
    router=router,
    start=start,
    migrations="services.training",
    personal_data=personal_data.HOOKS,
    demo=teach_demo_softwares,
)
