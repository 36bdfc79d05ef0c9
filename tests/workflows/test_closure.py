"""R10 on the workflow: closure with a resolution, reopening, one history, the reopen window."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import WorkflowExecutionStatus

from tests.workflows.harness import (
    CUSTOMER,
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
    MessageCmd,
    ReopenCmd,
)


async def test_close_reopen_by_update_and_by_reply_then_the_window_ends() -> None:
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-12T09:00:00")  # Monday
        await skip_to(env, received)
        o = opening(received)
        handle = await start(env, queue, o)
        await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
        await handle.execute_update(
            DossierWorkflow.diagnose,
            DiagnosisCmd(actor=TECH, kind="usage", context="Clôture mensuelle", need="Export FEC"),
        )
        await skip_to(env, paris("2032-01-12T09:20:00"))
        await handle.execute_update(
            DossierWorkflow.respond, MessageCmd(actor=TECH, text="Cochez « à-nouveaux ».")
        )
        await skip_to(env, paris("2032-01-12T09:40:00"))
        view = await handle.execute_update(
            DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Paramètre d'export corrigé.")
        )
        assert (view.status, view.resolution, view.waiting_for) == (
            "closed",
            "Paramètre d'export corrigé.",
            None,
        )
        assert view.closed_at is not None
        assert at_about(view.closed_at, paris("2032-01-12T09:40:00"))
        # R6: a usage question resolved within the business hour of its deposit
        assert view.details["usage_target"] == "2032-01-12T10:00:00+01:00"
        assert view.details["usage_target_met"] is True
        await settled(handle)
        assert fakes.templates() == ["acknowledgement", "response", "closure"]
        assert fakes.mails[-1].context["resolution"] == "Paramètre d'export corrigé."
        closed = fakes.published()[-1].data
        assert closed["set"]["status"] == "closed"
        assert closed["timeline"]["author"] == TECH.name

        # R10: reopened by the customer (update), on the same workflow and the same run
        await skip_to(env, paris("2032-01-13T10:00:00"))
        view = await handle.execute_update(
            DossierWorkflow.reopen, ReopenCmd(actor=CUSTOMER, reason="L'export échoue encore.")
        )
        assert (view.status, view.technician_id) == ("in_progress", TECH.user_id)
        assert (view.closed_at, view.resolution) == (None, None)
        assert view.details["previous_resolutions"] == [
            {"resolution": "Paramètre d'export corrigé.", "closed_at": closed["set"]["closed_at"]}
        ]
        await settled(handle)
        assert fakes.templates()[-1] == "reopened"
        assert fakes.mails[-1].context["reason"] == "L'export échoue encore."
        await handle.execute_update(
            DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Cache vidé.")
        )

        # a customer mail to a closed dossier reopens it too
        await skip_to(env, paris("2032-01-14T10:00:00"))
        await handle.signal(
            DossierWorkflow.customer_message,
            CustomerMessage(text="Toujours pas.", author_email=o.requester_email, via="mail"),
        )
        await eventually(lambda: "customer_replied" in fakes.types())
        view = await handle.query(DossierWorkflow.view)
        assert view.status == "in_progress"
        assert [r["resolution"] for r in view.details["previous_resolutions"]] == [
            "Paramètre d'export corrigé.",
            "Cache vidé.",
        ]
        await skip_to(env, paris("2032-01-14T11:00:00"))
        view = await handle.execute_update(
            DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Mise à jour 5.3 installée.")
        )
        assert view.closed_at is not None
        last_closed = view.closed_at
        await settled(handle)

        # one history: one run, events numbered in order without a restart
        description = await handle.describe()
        assert description.run_id == handle.first_execution_run_id
        assert description.status == WorkflowExecutionStatus.RUNNING
        assert fakes.types() == [
            "opened",
            "taken",
            "diagnosed",
            "noted",
            "responded",
            "closed",
            "reopened",
            "closed",
            "reopened",
            "customer_replied",
            "closed",
        ]
        seqs = fakes.seqs()
        assert len(set(seqs)) == len(seqs) == 11  # each published once, none lost
        assert [e.id for e in fakes.published()] == [f"{o.dossier_id}:{n}" for n in seqs]
        assert view.seq == seqs[-1]
        assert fakes.templates() == [
            "acknowledgement",
            "response",
            "closure",
            "reopened",
            "closure",
            "reopened",
            "closure",
        ]
        assert fakes.notice_kinds() == ["customer_replied"]  # no timer while closed

        # reopen_window_days (180) after the last closure, the workflow completes
        await skip_to(env, last_closed + timedelta(days=180) - timedelta(minutes=1))
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        assert await handle.result() == "closed"
        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.COMPLETED
        assert description.close_time is not None
        assert at_about(description.close_time, last_closed + timedelta(days=180))
        assert len(fakes.events) == 11  # nothing more was published in those six months
