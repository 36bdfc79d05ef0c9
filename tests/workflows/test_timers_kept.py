"""One timer per deadline (patch `timers-kept`, docs/workflow-versioning.md): commands that
leave the next deadline where it was (R3: the 75 % warning while the dossier is not answered)
keep the running timer; the warning still fires at its instant."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType

from tests.workflows.harness import (
    TECH,
    Fakes,
    at_about,
    eventually,
    opening,
    paris,
    running_worker,
    settled,
    skip_to,
    start,
    time_skipping,
)
from workflows.dossier import DossierWorkflow
from workflows.types import ActorCmd, MessageCmd


def _timers(events: list, kind: int) -> int:
    return sum(1 for e in events if e.event_type == kind)


async def test_commands_that_leave_the_deadline_keep_its_timer() -> None:
    fakes = Fakes()
    received = paris("2032-03-08T09:00:00")  # a Monday
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        await skip_to(env, received)
        handle = await start(env, queue, opening(received))
        await settled(handle)
        await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
        await handle.execute_update(DossierWorkflow.note, MessageCmd(actor=TECH, text="Vu."))
        await handle.execute_update(
            DossierWorkflow.note, MessageCmd(actor=TECH, text="Je rappelle le client.")
        )
        await settled(handle)
        events = list((await handle.fetch_history()).events)
        # the R3 warning (75 % of 4 business hours: 12:00) stays the next deadline throughout
        assert _timers(events, EventType.EVENT_TYPE_TIMER_STARTED) == 1
        assert _timers(events, EventType.EVENT_TYPE_TIMER_CANCELED) == 0

        await skip_to(env, paris("2032-03-08T12:00:05"))
        await eventually(lambda: "first_response_warned" in fakes.types(), timeout=30)
        warned = next(e for e in fakes.published() if e.type.endswith("first_response_warned"))
        assert at_about(warned.occurred_at, paris("2032-03-08T12:00:00"))
        await handle.terminate("test done")
