"""Update ids on the real Temporal server (the dev server the stack starts), as the HTTP API
uses them (docs/decisions/0012): the same update id twice in one run is applied once and answers
the first outcome; Temporal keeps update ids per run, so the dossier carries the ids its earlier
runs applied across continue-as-new and answers a repeated one without acting again."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from assistance import temporal as temporal_client
from deploy.local.stack import Endpoints
from tests.workflows.harness import TECH, Fakes, eventually, opening
from workflows.dossier import DossierWorkflow
from workflows.types import ActorCmd, DiagnosisCmd, DossierPolicy, MessageCmd


def _described(event: Any) -> str:
    """An event's type, and for an accepted update its id and name (failure reports)."""
    name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    if event.HasField("workflow_execution_update_accepted_event_attributes"):
        accepted = event.workflow_execution_update_accepted_event_attributes.accepted_request
        return f"{name}({accepted.meta.update_id} {accepted.input.name})"
    return name


@pytest.fixture
async def client(endpoints: Endpoints) -> Client:
    return await temporal_client.connect(endpoints.temporal_address, lazy=False)


async def test_an_update_id_is_applied_once_even_across_continue_as_new(
    client: Client,
) -> None:
    fakes = Fakes()
    queue = f"update-ids-{uuid.uuid4().hex[:8]}"
    o = opening(datetime.now(UTC), policy=DossierPolicy(history_limit=5))
    async with Worker(
        client, task_queue=queue, workflows=[DossierWorkflow], activities=fakes.activities()
    ):
        handle = await client.start_workflow(
            DossierWorkflow.run, o, id=o.dossier_id, task_queue=queue
        )
        first_run = (await handle.describe()).run_id
        taken = await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH), id="t-1")
        again = await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH), id="t-1")
        assert again == taken  # the first outcome, not a second take
        note = MessageCmd(actor=TECH, text="Une note.")
        noted = await handle.execute_update(DossierWorkflow.note, note, id="n-1")
        assert await handle.execute_update(DossierWorkflow.note, note, id="n-1") == noted
        await eventually(
            lambda: (fakes.types().count("taken"), fakes.types().count("noted")) == (1, 1),
            timeout=30,
        )
        # the fifth step makes the dossier continue as new
        await handle.execute_update(
            DossierWorkflow.diagnose,
            DiagnosisCmd(actor=TECH, kind="usage", context="Paie", need="Export FEC"),
            id="d-1",
        )
        await handle.execute_update(
            DossierWorkflow.respond, MessageCmd(actor=TECH, text="Réponse."), id="r-1"
        )

        async def moved() -> bool:
            return (await handle.describe()).run_id != first_run

        for _ in range(500):
            if await moved():
                break
            await asyncio.sleep(0.02)
        assert await moved(), "the dossier did not continue as new"

        # the new run does not know "n-1" as an update: its outcome cannot be read there…
        with pytest.raises(RPCError) as unknown:
            await handle.get_update_handle("n-1").result()
        assert unknown.value.status == RPCStatusCode.NOT_FOUND
        # …but the dossier carried the id over: a retry answers the dossier as it is, and is
        # not a second note (nor a second take, which would be refused as already taken)
        renoted = await handle.execute_update(DossierWorkflow.note, note, id="n-1")
        assert renoted.seq > noted.seq  # the dossier as it is now (diagnosed, answered)
        retaken = await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH), id="t-1")
        assert retaken.status == renoted.status
        # a new id is a new command
        again_noted = await handle.execute_update(DossierWorkflow.note, note, id="n-2")
        assert again_noted.seq > renoted.seq
        # every step up to the new note published (the diagnosis writes a "noted" entry of its
        # own, its context and need: the notes are counted by their text, not by their type)
        try:
            await eventually(lambda: again_noted.seq in fakes.seqs(), timeout=30)
        except AssertionError:
            runs = []
            for run_id in (first_run, (await handle.describe()).run_id):
                history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
                runs.append([_described(e) for e in history.events])
            raise AssertionError(
                f"published {[(e.type, e.data['seq']) for e in fakes.events]}; runs: {runs}"
            ) from None
        notes = [
            e for e in fakes.published() if (e.data["timeline"] or {}).get("text") == note.text
        ]
        assert [e.data["seq"] for e in notes] == [noted.seq, again_noted.seq]
        assert fakes.types().count("taken") == 1
        await handle.terminate("test done")


async def test_a_command_started_with_the_dossier_finds_it_opened(client: Client) -> None:
    """A take sent with the start (update-with-start: both in the first workflow task, where the
    SDK runs the update before `run`) is applied to an opened dossier: opened, then taken."""
    fakes = Fakes()
    queue = f"open-first-{uuid.uuid4().hex[:8]}"
    o = opening(datetime.now(UTC))
    async with Worker(
        client, task_queue=queue, workflows=[DossierWorkflow], activities=fakes.activities()
    ):
        start = WithStartWorkflowOperation(
            DossierWorkflow.run,
            o,
            id=o.dossier_id,
            task_queue=queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        view = await client.execute_update_with_start_workflow(
            DossierWorkflow.take, ActorCmd(actor=TECH), start_workflow_operation=start
        )
        assert view.status == "in_progress" and view.technician_id == TECH.user_id
        await eventually(lambda: len(fakes.types()) >= 2, timeout=30)
        assert fakes.types()[:2] == ["opened", "taken"]
        assert fakes.published()[0].data["seq"] == 1  # the opening is the dossier's first step
        await (await start.workflow_handle()).terminate("test done")
