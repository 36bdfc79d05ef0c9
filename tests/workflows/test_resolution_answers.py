"""R3: the mail that carries the resolution answers the customer. A dossier closed (or
resolved) without a separate response gets its first response then, so it no longer stays
"pending" for ever in /reports/activity; a dossier answered before keeps its first answer."""

from __future__ import annotations

from tests.workflows.harness import (
    TECH,
    Fakes,
    at_about,
    opening,
    paris,
    running_worker,
    settled,
    skip_to,
    start,
    time_skipping,
)
from workflows.dossier import DossierWorkflow
from workflows.types import ActorCmd, CloseCmd, DiagnosisCmd, MessageCmd

USAGE = DiagnosisCmd(actor=TECH, kind="usage", context="Clôture mensuelle", need="Export FEC")


async def test_closing_without_a_response_records_the_closure_as_the_first_response() -> None:
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-12T09:00:00")  # Monday
        await skip_to(env, received)
        handle = await start(env, queue, opening(received))
        await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
        await handle.execute_update(DossierWorkflow.diagnose, USAGE)
        await skip_to(env, paris("2032-01-12T09:30:00"))
        view = await handle.execute_update(
            DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Paramètre corrigé.")
        )
        await settled(handle)

        assert view.status == "closed"
        assert view.first_responded_at is not None
        assert at_about(view.first_responded_at, paris("2032-01-12T09:30:00"))
        closed = next(e for e in fakes.published() if e.type == "dossier.dossier.closed")
        assert closed.data["set"]["first_responded_at"] == view.first_responded_at.isoformat()
        assert fakes.templates() == ["acknowledgement", "closure"]


async def test_a_response_before_the_closure_stays_the_first_response() -> None:
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-12T09:00:00")
        await skip_to(env, received)
        handle = await start(env, queue, opening(received))
        await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
        await handle.execute_update(DossierWorkflow.diagnose, USAGE)
        await skip_to(env, paris("2032-01-12T09:10:00"))
        await handle.execute_update(
            DossierWorkflow.respond, MessageCmd(actor=TECH, text="Cochez « à-nouveaux ».")
        )
        await skip_to(env, paris("2032-01-12T09:40:00"))
        view = await handle.execute_update(
            DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Paramètre corrigé.")
        )

        assert view.first_responded_at is not None
        assert at_about(view.first_responded_at, paris("2032-01-12T09:10:00"))
