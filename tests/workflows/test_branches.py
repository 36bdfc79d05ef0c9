"""R7–R9 on the workflow: hand-over to the owning service, its facts back as signals.

The `hand_over` activity is a same-name fake recording the orders; the services' facts are
`service_event` signals, as the signal bridge delivers them. A fact delivered twice is applied
once.
"""

from __future__ import annotations

from tests.workflows.harness import (
    CUSTOMER,
    TECH,
    Fakes,
    at_about,
    eventually,
    fact,
    in_business_hours,
    opening,
    paris,
    running_worker,
    settled,
    skip_to,
    start,
    time_skipping,
    view_when,
)
from workflows.dossier import DossierWorkflow
from workflows.types import (
    ActorCmd,
    CloseCmd,
    DiagnosisCmd,
    HandOver,
    MessageCmd,
    WorkaroundCmd,
)

CONTEXT = "Cabinet comptable, 12 postes, clôture annuelle"
NEED = "Paramétrer les journaux analytiques"


def order(o_id: str, service: str, **kw: object) -> HandOver:
    """The hand-over the workflow sends for the harness's opening."""
    return HandOver(
        service=service,
        dossier_id=o_id,
        reference="D-2026-000042",
        software="manao-compta",
        organisation_id=None,
        requester_email="claire.martin@dupont-sa.fr",
        requester_name="Claire Martin",
        subject="Export FEC impossible",
        description="L'export s'arrête à 50 %.",
        context=CONTEXT,
        need=NEED,
        **kw,  # type: ignore[arg-type]
    )


async def test_advanced_usage_training_held_then_closed_without_answer() -> None:
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-12T09:00:00")  # Monday
        await skip_to(env, received)
        o = opening(received)
        handle = await start(env, queue, o)
        await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
        await handle.execute_update(
            DossierWorkflow.respond, MessageCmd(actor=TECH, text="Un formateur va vous appeler.")
        )
        await skip_to(env, paris("2032-01-12T09:30:00"))
        view = await handle.execute_update(
            DossierWorkflow.diagnose,
            DiagnosisCmd(
                actor=TECH, kind="advanced_usage", context=CONTEXT, need=NEED, version="5.2"
            ),
        )
        assert (view.status, view.kind, view.waiting_for) == (
            "waiting_service",
            "advanced_usage",
            "training",
        )
        await settled(handle)
        assert fakes.handovers == [order(o.dossier_id, "training", version="5.2", attempt=1)]
        view = await view_when(handle, lambda v: "training_ticket" in v.details)
        assert view.details["training_ticket"] == {"ok": True, "service": "training"}

        # R7: the training service books a trainer for the next day
        await skip_to(env, paris("2032-01-12T10:00:00"))
        booked = fact(
            o.dossier_id,
            "training.appointment.booked",
            "appt-1:booked",
            appointment_id="appt-1",
            starts_at="2032-01-13T14:00:00+01:00",
            ends_at="2032-01-13T15:00:00+01:00",
            trainer_name="Sophie",
            link="https://visio.manao.eu/appt-1",
        )
        await handle.signal(DossierWorkflow.service_event, booked)
        await eventually(lambda: "training_booked" in fakes.types())
        entry = fakes.published()[-1].data["timeline"]
        assert entry["text"] == "Rendez-vous de formation le mardi 13/01/2032 à 14:00 avec Sophie."
        assert entry["visibility"] == "customer"

        # held: a proposed resolution, mailed; the same fact twice is applied once
        await skip_to(env, paris("2032-01-13T15:00:00"))
        held = fact(
            o.dossier_id,
            "training.appointment.held",
            "appt-1:held",
            appointment_id="appt-1",
            notes="Journaux analytiques paramétrés.",
        )
        await handle.signal(DossierWorkflow.service_event, held)
        await handle.signal(DossierWorkflow.service_event, held)
        view = await view_when(handle, lambda v: v.status == "resolved")
        assert view.waiting_for == "customer"
        resolution = "Formation effectuée : Journaux analytiques paramétrés."
        assert view.details["proposed_resolution"] == resolution
        await settled(handle)
        assert fakes.templates() == ["acknowledgement", "response", "response", "resolved"]
        assert fakes.mails[-1].context["resolution"] == resolution

        # no answer for confirmation_hours (40 business hours): closed Tuesday 20 at 15:00
        await skip_to(env, paris("2032-01-20T14:59:00"))
        assert (await handle.query(DossierWorkflow.view)).status == "resolved"
        await skip_to(env, paris("2032-01-20T15:01:00"))
        view = await view_when(handle, lambda v: v.status == "closed")
        assert view.resolution == resolution
        assert view.closed_at is not None
        assert at_about(view.closed_at, paris("2032-01-20T15:00:00"))
        await settled(handle)
        assert fakes.templates()[-1] == "closure"
        assert fakes.mails[-1].context["resolution"] == resolution
        closed = fakes.published()[-1].data
        assert closed["timeline"]["author"] == "système"
        assert fakes.types() == [
            "opened",
            "taken",
            "responded",
            "diagnosed",
            "noted",
            "handed_over",
            "training_booked",
            "resolved",
            "closed",
        ]
        assert fakes.published()[5].data["service"] == "training"
        assert fakes.notices == []  # the service and then the customer were the live timers


async def test_training_held_and_confirmed_by_the_customer_closes_at_once() -> None:
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-12T09:00:00")
        await skip_to(env, received)
        o = opening(received)
        handle = await start(env, queue, o)
        await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
        await handle.execute_update(
            DossierWorkflow.diagnose,
            DiagnosisCmd(actor=TECH, kind="advanced_usage", context=CONTEXT, need=NEED),
        )
        await skip_to(env, paris("2032-01-13T16:00:00"))
        await handle.signal(
            DossierWorkflow.service_event,
            fact(o.dossier_id, "training.appointment.held", "appt-2:held", notes=""),
        )
        await view_when(handle, lambda v: v.status == "resolved")
        await skip_to(env, paris("2032-01-14T09:30:00"))
        view = await handle.execute_update(DossierWorkflow.confirm, ActorCmd(actor=CUSTOMER))
        assert (view.status, view.resolution) == ("closed", "Formation effectuée : sujet traité.")
        assert view.closed_at is not None
        assert at_about(view.closed_at, paris("2032-01-14T09:30:00"))
        await settled(handle)
        assert fakes.templates() == ["acknowledgement", "response", "resolved", "closure"]
        assert fakes.published()[-1].data["timeline"]["author"] == CUSTOMER.name
        # the hand-over told the customer at once: that is the first response (R3)
        assert fakes.notice_kinds() == []
        assert view.first_responded_at is not None


async def test_bug_waits_for_the_workaround_then_the_release_is_mailed() -> None:
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-12T09:00:00")  # Monday
        await skip_to(env, received)
        o = opening(received)
        handle = await start(env, queue, o)
        await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
        await skip_to(env, paris("2032-01-12T09:15:00"))
        view = await handle.execute_update(
            DossierWorkflow.diagnose,
            DiagnosisCmd(actor=TECH, kind="bug", context=CONTEXT, need=NEED, version="5.2"),
        )
        assert (view.status, view.kind, view.waiting_for) == ("in_progress", "bug", None)
        await skip_to(env, paris("2032-01-12T10:00:00"))
        await settled(handle)
        assert fakes.handovers == []  # R8: not before the workaround

        view = await handle.execute_update(
            DossierWorkflow.record_workaround,
            WorkaroundCmd(actor=TECH, text="Exportez mois par mois en attendant."),
        )
        assert (view.status, view.waiting_for) == ("waiting_service", "bug_fix")
        assert view.first_responded_at is not None  # the workaround is the first response
        assert at_about(view.first_responded_at, paris("2032-01-12T10:00:00"))
        await settled(handle)
        assert fakes.handovers == [
            order(
                o.dossier_id,
                "bugs",
                version="5.2",
                workaround="Exportez mois par mois en attendant.",
                attempt=1,
            )
        ]
        assert fakes.templates() == ["acknowledgement", "workaround"]

        await skip_to(env, paris("2032-01-12T10:05:00"))
        await handle.signal(
            DossierWorkflow.service_event,
            fact(o.dossier_id, "bugs.bug.reported", "bug-7:1", bug_id="bug-7"),
        )
        view = await view_when(handle, lambda v: "bug" in v.details)
        assert view.details["bug"] == {"id": "bug-7", "state": "reported"}

        # a silent service: the technician is reminded after service_reminder_hours (40)
        await skip_to(env, paris("2032-01-19T11:00:00"))
        await settled(handle)
        assert fakes.notice_kinds() == ["reminder"]
        assert at_about(fakes.notice_times[0], paris("2032-01-19T10:05:00"))
        assert fakes.notices[0].text.endswith("le service concerné n'a pas donné de nouvelles.")
        assert in_business_hours(fakes.notice_times[0])

        released = fact(
            o.dossier_id, "bugs.bug.released", "bug-7:5", bug_id="bug-7", version="5.3.1"
        )
        await handle.signal(DossierWorkflow.service_event, released)
        await handle.signal(DossierWorkflow.service_event, released)
        view = await view_when(handle, lambda v: v.status == "resolved")
        assert view.details["proposed_resolution"] == "Corrigé dans la version 5.3.1."
        assert view.details["bug"] == {"id": "bug-7", "state": "released", "fixed_in": "5.3.1"}
        await settled(handle)
        assert fakes.templates() == ["acknowledgement", "workaround", "fix_released"]
        assert fakes.mails[-1].context["version"] == "5.3.1"

        view = await handle.execute_update(DossierWorkflow.confirm, ActorCmd(actor=CUSTOMER))
        assert (view.status, view.resolution) == ("closed", "Corrigé dans la version 5.3.1.")
        await settled(handle)
        assert fakes.types() == [
            "opened",
            "taken",
            "diagnosed",
            "noted",
            "workaround_recorded",
            "handed_over",
            "bug_reported",
            "reminded",
            "resolved",
            "closed",
        ]
        assert fakes.templates()[-1] == "closure"


async def test_evolution_accepted_is_mailed_and_closes_the_dossier() -> None:
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-12T09:00:00")
        await skip_to(env, received)
        o = opening(received)
        handle = await start(env, queue, o)
        await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
        await handle.execute_update(
            DossierWorkflow.respond, MessageCmd(actor=TECH, text="Je transmets au produit.")
        )
        view = await handle.execute_update(
            DossierWorkflow.diagnose,
            DiagnosisCmd(actor=TECH, kind="evolution", context=CONTEXT, need=NEED),
        )
        assert (view.status, view.waiting_for) == ("waiting_service", "evolution_decision")
        await settled(handle)
        assert fakes.handovers == [order(o.dossier_id, "evolutions", attempt=1)]

        await skip_to(env, paris("2032-01-12T10:00:00"))
        await handle.signal(
            DossierWorkflow.service_event,
            fact(o.dossier_id, "evolutions.request.recorded", "evo-3:recorded", request_id="r-3"),
        )
        await eventually(lambda: "evolution_recorded" in fakes.types())
        assert fakes.published()[-1].data["timeline"]["text"] == (
            "Demande d'évolution enregistrée pour la revue hebdomadaire."
        )

        # R9: the weekly review (Thursday) accepts it; the decision is mailed, the dossier closes
        await skip_to(env, paris("2032-01-15T11:00:00"))
        accepted = fact(
            o.dossier_id,
            "evolutions.request.accepted",
            "evo-3:decided",
            request_id="r-3",
            reason="Prévue dans la version 6.0.",
            specification="CDC-2032-004",
        )
        await handle.signal(DossierWorkflow.service_event, accepted)
        await handle.signal(DossierWorkflow.service_event, accepted)
        view = await view_when(handle, lambda v: v.status == "closed")
        assert view.resolution == "Demande d'évolution acceptée. Prévue dans la version 6.0."
        assert view.details["evolution"]["state"] == "accepted"
        await settled(handle)
        assert fakes.templates() == [
            "acknowledgement",
            "response",
            "evolution_recorded",
            "evolution_accepted",
        ]
        assert fakes.mails[-1].context["reason"] == "Prévue dans la version 6.0."
        assert fakes.mails[-1].context["specification"] == "CDC-2032-004"
        assert fakes.types()[-3:] == ["handed_over", "evolution_recorded", "closed"]
        assert fakes.published()[-1].data["timeline"]["author"] == "chef de produit"
        assert fakes.notices == []


async def test_facts_reaching_a_closed_dossier_keep_it_closed_and_the_release_is_mailed() -> None:
    """The bugs service tells every dossier linked to a bug; one may be closed already (the
    workaround was enough). R10: it stays closed until someone reopens it; R8: its customer
    is still told which version carries the fix."""
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-12T09:00:00")
        await skip_to(env, received)
        o = opening(received)
        handle = await start(env, queue, o)
        await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
        await handle.execute_update(
            DossierWorkflow.diagnose,
            DiagnosisCmd(actor=TECH, kind="bug", context=CONTEXT, need=NEED, version="5.2"),
        )
        await handle.execute_update(
            DossierWorkflow.record_workaround,
            WorkaroundCmd(actor=TECH, text="Exportez mois par mois en attendant."),
        )
        await skip_to(env, paris("2032-01-12T10:30:00"))
        closed = await handle.execute_update(
            DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Le contournement suffit.")
        )
        assert closed.status == "closed"

        await skip_to(env, paris("2032-01-13T10:00:00"))
        for n, what in enumerate(("reproduced", "not_reproducible", "fix_completed"), 2):
            await handle.signal(
                DossierWorkflow.service_event,
                fact(o.dossier_id, f"bugs.bug.{what}", f"bug-7:{n}", bug_id="bug-7"),
            )
        await handle.signal(
            DossierWorkflow.service_event,
            fact(o.dossier_id, "bugs.bug.released", "bug-7:5", bug_id="bug-7", version="5.3.1"),
        )
        view = await view_when(handle, lambda v: v.details.get("bug", {}).get("fixed_in"))
        assert (view.status, view.resolution, view.closed_at, view.waiting_for) == (
            "closed",
            "Le contournement suffit.",
            closed.closed_at,
            None,
        )
        await settled(handle)
        assert fakes.templates() == ["acknowledgement", "workaround", "closure", "fix_released"]
        assert fakes.mails[-1].context["version"] == "5.3.1"

        # no timer on a closed dossier: no reminder, no second closure; the window still ends
        await skip_to(env, paris("2032-02-12T10:00:00"))
        await settled(handle)
        assert fakes.notices == []
        assert fakes.templates()[-1] == "fix_released"
        assert fakes.types()[-2:] == ["closed", "bug_released"]
        late = fakes.published()[-1].data
        assert late["set"]["status"] == "closed"
        assert late["timeline"]["text"] == "Correctif livré dans la version 5.3.1."
        assert await handle.result() == "closed"


async def test_a_decision_reaching_a_closed_evolution_dossier_is_mailed_and_it_stays_closed() -> (
    None
):
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-12T09:00:00")
        await skip_to(env, received)
        o = opening(received)
        handle = await start(env, queue, o)
        await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
        await handle.execute_update(
            DossierWorkflow.diagnose,
            DiagnosisCmd(actor=TECH, kind="evolution", context=CONTEXT, need=NEED),
        )
        closed = await handle.execute_update(
            DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Transmise au produit.")
        )
        await skip_to(env, paris("2032-01-15T11:00:00"))
        await handle.signal(
            DossierWorkflow.service_event,
            fact(
                o.dossier_id,
                "evolutions.request.rejected",
                "evo-4:decided",
                request_id="r-4",
                reason="Hors du périmètre du logiciel.",
            ),
        )
        view = await view_when(handle, lambda v: "evolution" in v.details)
        assert (view.status, view.resolution, view.closed_at) == (
            "closed",
            "Transmise au produit.",
            closed.closed_at,
        )
        assert view.details["evolution"]["state"] == "rejected"
        await settled(handle)
        assert fakes.templates() == [
            "acknowledgement",
            "evolution_recorded",
            "closure",
            "evolution_rejected",
        ]
        assert fakes.mails[-1].context["reason"] == "Hors du périmètre du logiciel."
        assert fakes.types()[-2:] == ["closed", "evolution_rejected"]
