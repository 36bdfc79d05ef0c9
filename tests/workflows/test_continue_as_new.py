"""Continue-as-new: a long-lived dossier starts a fresh history and keeps everything it knows.

With `history_limit=5`, the workflow continues as new after five published steps; the state
(technician, kind, first response, timeline numbering, mail thread, timers) crosses over.
"""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

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
from workflows.types import (
    ActorCmd,
    CloseCmd,
    CustomerMessage,
    DiagnosisCmd,
    DossierPolicy,
    MessageCmd,
    ScreenShareCmd,
)


async def run_chain(env: WorkflowEnvironment, handle: WorkflowHandle) -> list[str]:
    """The dossier's run ids, first to last, walked back through the started events."""
    run_id = (await handle.describe()).run_id
    chain: list[str] = []
    while run_id:
        chain.insert(0, run_id)
        history = await env.client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        started = history.events[0]
        assert started.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
        run_id = started.workflow_execution_started_event_attributes.continued_execution_run_id
    return chain


async def next_run(handle: WorkflowHandle, runs: list[str]) -> None:
    """Wait until the dossier runs in a new run (continued as new), and note its id."""
    for _ in range(500):
        run_id = (await handle.describe()).run_id
        if run_id not in runs:
            runs.append(run_id)
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still in run {runs[-1]}")


async def test_state_survives_continue_as_new_and_commands_still_work() -> None:
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-12T09:00:00")  # Monday
        await skip_to(env, received)
        o = opening(received, policy=DossierPolicy(history_limit=5))
        handle = await start(env, queue, o)
        runs = [(await handle.describe()).run_id]
        await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
        await handle.execute_update(
            DossierWorkflow.diagnose,
            DiagnosisCmd(actor=TECH, kind="usage", context="Paie", need="Export FEC"),
        )
        await skip_to(env, paris("2032-01-12T09:05:00"))
        before = await handle.execute_update(
            DossierWorkflow.respond, MessageCmd(actor=TECH, text="Regardez l'onglet Export.")
        )  # the fifth step: opened, taken, diagnosed, noted, responded
        await next_run(handle, runs)

        view = await handle.query(DossierWorkflow.view)
        assert view == before  # the same dossier, as it was
        assert (view.technician_id, view.kind, view.status) == (
            TECH.user_id,
            "usage",
            "in_progress",
        )
        assert view.first_responded_at is not None
        assert at_about(view.first_responded_at, paris("2032-01-12T09:05:00"))
        first_run_mails = sorted(fakes.mails, key=lambda m: m.step)
        assert [m.template for m in first_run_mails] == ["acknowledgement", "response"]

        # the second run: commands work, the thread and the numbering carry on
        await skip_to(env, paris("2032-01-12T09:10:00"))
        await handle.execute_update(
            DossierWorkflow.screen_share, ScreenShareCmd(actor=TECH, link="https://visio/1")
        )
        await settled(handle)
        share = fakes.mails[-1]
        assert share.template == "screen_share"
        assert share.thread == [f"<D-2026-000042.{m.step}.sig@test>" for m in first_run_mails]
        await handle.execute_update(DossierWorkflow.note, MessageCmd(actor=TECH, text="Vu."))
        await handle.execute_update(
            DossierWorkflow.request_information, MessageCmd(actor=TECH, text="Quel navigateur ?")
        )
        await handle.signal(
            DossierWorkflow.customer_message,
            CustomerMessage(text="Firefox.", author_email=o.requester_email, via="mail"),
        )
        await eventually(lambda: "customer_replied" in fakes.types())
        await skip_to(env, paris("2032-01-12T09:40:00"))
        await handle.execute_update(
            DossierWorkflow.respond, MessageCmd(actor=TECH, text="Videz le cache de Firefox.")
        )
        await next_run(handle, runs)

        # the third run keeps the R2 timer: reminded 4 business hours after 09:40
        await skip_to(env, paris("2032-01-12T15:00:00"))
        await settled(handle)
        assert fakes.notice_kinds() == ["customer_replied", "reminder"]
        assert at_about(fakes.notice_times[1], paris("2032-01-12T14:40:00"))
        assert fakes.notices[1].technician_id == TECH.user_id

        # a burst of commands, sent without waiting, lands whatever run takes it
        for n in range(7):
            await handle.execute_update(DossierWorkflow.note, MessageCmd(actor=TECH, text=f"{n}"))
        view = await handle.execute_update(
            DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Cache vidé.")
        )
        assert (view.status, view.technician_id, view.kind) == ("closed", TECH.user_id, "usage")
        assert view.details["usage_target"] == "2032-01-12T10:00:00+01:00"
        assert view.details["usage_target_met"] is False
        await settled(handle)

        events = fakes.published()
        assert len({e.id for e in fakes.events}) == len(fakes.events) == 19
        assert fakes.types() == [
            "opened",
            "taken",
            "diagnosed",
            "noted",
            "responded",
            "screen_share_opened",
            "noted",
            "information_requested",
            "customer_replied",
            "responded",
            "reminded",
            *["noted"] * 7,
            "closed",
        ]
        assert view.seq == events[-1].data["seq"]
        assert [e.data["timeline"]["text"] for e in events[11:18]] == [f"{n}" for n in range(7)]
        # continued as new three times: after steps 5, 10 and (reminded + 4 notes) 15; the
        # third one once the burst has settled, so perhaps after the closure
        await next_run(handle, runs)
        assert await run_chain(env, handle) == runs
        assert len(runs) == 4
        assert fakes.templates() == [
            "acknowledgement",
            "response",
            "screen_share",
            "information_request",
            "response",
            "closure",
        ]
        assert (
            fakes.mails[-1].thread
            == [
                f"<D-2026-000042.{m.step}.sig@test>"
                for m in sorted(fakes.mails, key=lambda m: m.step)
            ][:-1]
        )
