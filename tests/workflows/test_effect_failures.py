"""A side effect that fails for good is recorded on the dossier and never fails the
workflow (issue 11 item 4(d), docs/decisions/0013); an administrator's retry runs it again.

Same-name fake activities on Temporal's time-skipping server: the hand-over always fails (a
refusal, retried a bounded number of times), a step with a mail is refused at once
(non-retryable: nothing of the step is written, decision 0022)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter
from temporalio import activity
from temporalio.exceptions import ApplicationError

from tests.workflows.harness import (
    TECH,
    Fakes,
    eventually,
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
from workflows.types import ActorCmd, CloseCmd, DiagnosisCmd, HandOver, MessageCmd, StepRecord


class Failing(Fakes):
    def __init__(self) -> None:
        super().__init__()
        self.handover_attempts: list[int] = []
        self.refuse_handover = True

    @activity.defn(name="hand_over")
    async def hand_over(self, order: HandOver) -> dict[str, Any]:
        self.handover_attempts.append(activity.info().attempt)
        if self.refuse_handover:
            raise RuntimeError("le service formation refuse la demande")
        self.handovers.append(order)
        return {"ok": True, "service": order.service}

    def activities(self) -> list[Any]:
        return [self.publish, self.send_mail, self.notify_staff, self.record_step, self.hand_over]


async def test_a_hand_over_failing_for_good_is_recorded_and_the_dossier_goes_on() -> None:
    fakes = Failing()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-12T09:00:00")  # Monday
        await skip_to(env, received)
        o = opening(received)
        handle = await start(env, queue, o)
        await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
        await handle.execute_update(
            DossierWorkflow.diagnose,
            DiagnosisCmd(actor=TECH, kind="advanced_usage", context="Cabinet", need="Journaux"),
        )
        # ten attempts (the bounded retry policy: 1 + 2 + 4 + … s, at most 5 min apart), then
        # recorded: not retried for ever
        await env.sleep(timedelta(minutes=20))
        await eventually(lambda: "effect_failed" in fakes.types(), timeout=60)
        await settled(handle)
        assert fakes.handover_attempts == list(range(1, 11))
        failed = [e for e in fakes.published() if e.type == "dossier.dossier.effect_failed"]
        assert len(failed) == 1
        assert failed[0].data["effect"] == "hand_over"
        entry = failed[0].data["timeline"]
        assert entry["kind"] == "effect_failed"
        assert entry["visibility"] == "internal"
        assert entry["text"] == (
            "Échec définitif : transmission au service concerné. Les administrateurs sont "
            "prévenus ; l'action sera relancée depuis le travail bloqué une fois la cause "
            "réparée."
        )
        assert entry["data"]["effect"] == "hand_over"
        assert failed[0].data["set"]["details"]["failed_effects"] == 1

        # the workflow is alive: it answers commands and queries
        view = await handle.execute_update(
            DossierWorkflow.respond, MessageCmd(actor=TECH, text="Nous revenons vers vous.")
        )
        assert view.status == "waiting_service"

        # an administrator repaired the cause and retries: the hand-over goes through once
        fakes.refuse_handover = False
        order = HandOver(
            service="training",
            dossier_id=o.dossier_id,
            reference=o.reference,
            software=o.software,
            organisation_id=None,
            requester_email=o.requester_email,
            requester_name=o.requester_name,
            subject=o.subject,
            description=o.description,
            context="Cabinet",
            need="Journaux",
            version=None,
            workaround=None,
            attempt=1,
        )
        await handle.signal(
            DossierWorkflow.retry_effect,
            {"parked_id": 1, "activity": "hand_over", "args": [asdict(order)]},
        )
        await eventually(lambda: fakes.handovers == [order], timeout=30)
        await settled(handle)
        view = await handle.execute_update(
            DossierWorkflow.close, CloseCmd(actor=TECH, resolution="Formation planifiée.")
        )
        assert view.status == "closed"
        await skip_to(env, paris("2032-07-30T09:00:00"))  # past the reopening window
        assert await handle.result() == "closed"


class RefusedMail(Fakes):
    """The step recording refuses a mail (as it refuses an unknown template): non-retryable."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[StepRecord] = []
        self.refuse = True

    @activity.defn(name="record_dossier_step")
    async def record_step(self, record: StepRecord) -> list[str]:
        if record.mails and self.refuse:
            self.refused.append(record)
            raise ApplicationError("adresse refusée", type="MailRefused", non_retryable=True)
        return await super().record_step(record)

    def activities(self) -> list[Any]:
        return [self.publish, self.send_mail, self.notify_staff, self.record_step, self.hand_over]


async def test_a_refused_step_is_recorded_at_once_and_the_dossier_opens() -> None:
    fakes = RefusedMail()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-12T09:00:00")
        await skip_to(env, received)
        o = opening(received)
        handle = await start(env, queue, o)
        await eventually(lambda: "effect_failed" in fakes.types(), timeout=30)
        await settled(handle)
        # the opening's event and acknowledgement are one step: neither was written
        assert [e.type for e in fakes.refused[0].events] == ["dossier.dossier.opened"]
        assert fakes.types() == ["effect_failed"]
        entry = fakes.published()[-1].data["timeline"]
        assert entry["text"].startswith(
            "Échec définitif : enregistrement d'une étape du dossier (historique, mails, avis)."
        )
        assert entry["data"]["error"] == "MailRefused: adresse refusée"
        view = await view_when(handle, lambda v: v.details.get("failed_effects") == 1)
        assert view.status == "new"

        # an administrator retries the parked step once the cause is repaired (its arguments
        # as the worker parked them): written once, the dossier goes on
        fakes.refuse = False
        args = TypeAdapter(StepRecord).dump_python(fakes.refused[0], mode="json")
        await handle.signal(
            DossierWorkflow.retry_effect,
            {"parked_id": 1, "activity": "record_dossier_step", "args": [args]},
        )
        await eventually(lambda: "opened" in fakes.types(), timeout=30)
        await settled(handle)
        assert fakes.types() == ["opened", "effect_failed"]
        assert fakes.templates() == ["acknowledgement"]
        view = await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
        assert view.status == "in_progress"
        await settled(handle)
        assert fakes.types() == ["opened", "effect_failed", "taken"]
