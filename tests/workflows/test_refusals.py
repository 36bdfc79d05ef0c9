"""Invalid transitions at the workflow level: validators refuse before anything is written.

A refused update raises `WorkflowUpdateFailedError` whose cause is a non-retryable
`ApplicationError` typed with the rule's code (services/dossier/domain.py); the dossier, its
published events and its Temporal history are unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.workflows.harness import (
    CUSTOMER,
    OTHER_TECH,
    TECH,
    Fakes,
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
    Actor,
    ActorCmd,
    CloseCmd,
    DiagnosisCmd,
    MessageCmd,
    ReopenCmd,
    ScreenShareCmd,
    WorkaroundCmd,
)

BUG = DiagnosisCmd(actor=TECH, kind="bug", context="Paie mensuelle", need="Export FEC")


async def accepted_updates(handle: WorkflowHandle) -> int:
    history = await handle.fetch_history()
    return sum(
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        for e in history.events
    )


async def refused(handle: WorkflowHandle, fakes: Fakes, update: Any, cmd: Any, code: str) -> None:
    await settled(handle)  # the previous command's effects are all out before counting them
    before, published = await handle.query(DossierWorkflow.view), len(fakes.events)
    updates = await accepted_updates(handle)
    with pytest.raises(WorkflowUpdateFailedError) as raised:
        await handle.execute_update(update, cmd)
    cause = raised.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.non_retryable) == (code, True)
    await settled(handle)
    assert await handle.query(DossierWorkflow.view) == before
    assert len(fakes.events) == published
    assert await accepted_updates(handle) == updates


async def test_refused_commands_raise_the_rule_code_and_write_nothing() -> None:
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-12T09:00:00")
        await skip_to(env, received)
        h = await start(env, queue, opening(received))
        wf = DossierWorkflow

        # new: nobody follows it yet
        await refused(h, fakes, wf.respond, MessageCmd(actor=TECH, text="Bonjour"), "not_taken")
        await refused(h, fakes, wf.diagnose, BUG, "not_taken")
        await refused(h, fakes, wf.take, ActorCmd(actor=CUSTOMER), "staff_only")
        await h.execute_update(wf.take, ActorCmd(actor=TECH))

        # taken by Thomas
        await refused(h, fakes, wf.take, ActorCmd(actor=TECH), "already_yours")
        await refused(h, fakes, wf.take, ActorCmd(actor=OTHER_TECH), "taken_by_another")
        await refused(
            h, fakes, wf.respond, MessageCmd(actor=OTHER_TECH, text="Bonjour"), "taken_by_another"
        )
        await refused(h, fakes, wf.respond, MessageCmd(actor=TECH, text="  "), "empty_message")
        await refused(
            h,
            fakes,
            wf.diagnose,
            DiagnosisCmd(actor=TECH, kind="question", context="c", need="n"),
            "invalid_kind",
        )
        await refused(
            h,
            fakes,
            wf.diagnose,
            DiagnosisCmd(actor=TECH, kind="bug", context=" ", need="Export FEC"),
            "diagnosis_incomplete",
        )
        await refused(h, fakes, wf.close, CloseCmd(actor=TECH, resolution="Fait."), "not_diagnosed")
        await refused(
            h, fakes, wf.record_workaround, WorkaroundCmd(actor=TECH, text="x"), "not_a_bug"
        )
        await refused(h, fakes, wf.confirm, ActorCmd(actor=CUSTOMER), "not_resolved")
        await refused(h, fakes, wf.confirm, ActorCmd(actor=TECH), "customer_only")
        await refused(h, fakes, wf.reopen, ReopenCmd(actor=CUSTOMER, reason="?"), "not_closed")

        # diagnosed as a bug: the R8 gate
        await h.execute_update(wf.diagnose, BUG)
        await refused(
            h, fakes, wf.screen_share, ScreenShareCmd(actor=TECH, link="https://x"), "not_usage"
        )
        await refused(
            h, fakes, wf.record_workaround, WorkaroundCmd(actor=TECH), "workaround_required"
        )
        await refused(
            h,
            fakes,
            wf.record_workaround,
            WorkaroundCmd(actor=TECH, text="Exportez par mois.", none_reason="Aucun."),
            "workaround_required",
        )
        await h.execute_update(
            wf.record_workaround, WorkaroundCmd(actor=TECH, text="Exportez par mois.")
        )
        await view_when(h, lambda v: "bugs_ticket" in v.details)  # the hand-over's answer
        await refused(
            h,
            fakes,
            wf.record_workaround,
            WorkaroundCmd(actor=TECH, text="Autre."),
            "workaround_recorded",
        )
        await refused(h, fakes, wf.diagnose, BUG, "handed_over")
        await refused(
            h, fakes, wf.close, CloseCmd(actor=TECH, resolution=" "), "resolution_required"
        )
        await h.execute_update(
            wf.close, CloseCmd(actor=TECH, resolution="Contournement suffisant.")
        )

        # closed: reopen first
        await refused(
            h, fakes, wf.respond, MessageCmd(actor=TECH, text="Bonjour"), "dossier_closed"
        )
        await refused(
            h, fakes, wf.respond, MessageCmd(actor=CUSTOMER, text="Re-bonjour"), "dossier_closed"
        )
        await refused(h, fakes, wf.take, ActorCmd(actor=OTHER_TECH), "dossier_closed")
        await refused(
            h,
            fakes,
            wf.request_information,
            MessageCmd(actor=TECH, text="Version ?"),
            "dossier_closed",
        )
        await refused(h, fakes, wf.reopen, ReopenCmd(actor=CUSTOMER, reason=" "), "reason_required")
        await refused(
            h,
            fakes,
            wf.reopen,
            ReopenCmd(actor=Actor(user_id="dev-1", role="developer"), reason="Test"),
            "forbidden",
        )
        view = await h.query(wf.view)
        assert (view.status, view.resolution) == ("closed", "Contournement suffisant.")
        assert await accepted_updates(h) == 4  # take, diagnose, record_workaround, close
        assert fakes.types() == [
            "opened",
            "taken",
            "diagnosed",
            "noted",
            "workaround_recorded",
            "handed_over",
            "closed",
        ]
