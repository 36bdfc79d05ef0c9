"""Rolling upgrade with live dossiers (issue 12, item 3): a worker of version N (today's
`DossierWorkflow`) and one of version N+1 (tests/workflows/next_version.py: a change behind
`workflow.patched`) share the task queue while dossiers are open, on the real Temporal server.

The rollout, phase by phase (the workers cache no workflow, so every task replays the whole
history on whichever worker takes it):
1. before it, N alone: dossiers A are opened and taken;
2. N+1 alone (N restarting): dossiers B are opened on N+1, and A are diagnosed there (N+1
   replays histories written by N);
3. N alone again: B are taken and diagnosed (N replays histories written by N+1), A answered;
4. N and N+1 side by side: B answered, then notes on every dossier, each task to whichever
   worker polls first;
5. after it, N+1 alone: every dossier is closed, on N+1's new branch.
No workflow task fails anywhere (no non-determinism error), each dossier shows tasks of both
versions, and each took the new branch exactly once at its closure.

The replays: every history recorded on N (tests/workflows/histories/) and every history of
this rollout replays on N+1's code; the rollout's histories before the closures replay on N's.
And the limit the procedure in deploy/README.md is written around: once N+1 has taken the
patched branch of a dossier, N can no longer replay that dossier (its marker is a change N does
not know), so the branch must not be reachable while N workers still poll — here the closures
come after the last N worker is gone.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer, Worker

from assistance import temporal as temporal_client
from assistance.temporal import data_converter
from deploy.local.stack import Endpoints
from tests.workflows.harness import TECH, Fakes, opening, settled
from tests.workflows.next_version import CHANGE, VERSION, DossierWorkflowNext
from tests.workflows.record_histories import HISTORIES, dossier_id
from workflows.dossier import DossierWorkflow
from workflows.types import ActorCmd, CloseCmd, DiagnosisCmd, MessageCmd

PER_GROUP = 3
N, NEXT = "N", VERSION
WORKFLOWS: dict[str, type] = {N: DossierWorkflow, NEXT: DossierWorkflowNext}
SETTLE_S = 60.0  # a liveness bound, not a speed check


@pytest.fixture(scope="module")
async def client(endpoints: Endpoints) -> Client:
    return await temporal_client.connect(endpoints.temporal_address, lazy=False)


@asynccontextmanager
async def workers(client: Client, queue: str, fakes: Fakes, *versions: str) -> AsyncIterator[None]:
    """Workers of these versions polling `queue`, each named after its version and with its own
    connection, as two processes would be."""
    address = client.service_client.config.target_host
    async with AsyncExitStack() as stack:
        for version in versions:
            own = await temporal_client.connect(address, lazy=False)
            await stack.enter_async_context(
                Worker(
                    own,
                    task_queue=queue,
                    workflows=[WORKFLOWS[version]],
                    activities=fakes.activities(),
                    identity=f"worker-{version}",
                    max_cached_workflows=0,  # every task replays the whole history
                )
            )
        yield


async def _each(handles: list[WorkflowHandle], update: str, arg: Any) -> None:
    await asyncio.gather(*(h.execute_update(update, arg) for h in handles))
    await asyncio.gather(*(settled(h, SETTLE_S) for h in handles))


def _tasks(history: WorkflowHistory) -> list[str]:
    """Who completed each workflow task, in order; a failed task fails the test."""
    failed = EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    assert [e for e in history.events if e.event_type == failed] == [], history.workflow_id
    started = {
        e.event_id: e.workflow_task_started_event_attributes.identity
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    }
    return [
        started[e.workflow_task_completed_event_attributes.started_event_id]
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]


def _markers(history: WorkflowHistory) -> list[str]:
    """The patch markers of CHANGE in the history (as tests/workflows/test_versioning.py reads
    them)."""
    found = []
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
            continue
        marker = event.marker_recorded_event_attributes
        if marker.marker_name == "core_patch":
            for payload in marker.details["patch-data"].payloads:
                found.append(json.loads(payload.data)["id"])
    return [patch for patch in found if patch == CHANGE]


async def _replay(version: str, history: WorkflowHistory) -> str | None:
    """Replay `history` on version `version`'s code; the failure, if any."""
    replayer = Replayer(workflows=[WORKFLOWS[version]], data_converter=data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    return None if result.replay_failure is None else str(result.replay_failure)


async def test_dossiers_move_between_n_and_n_plus_1_during_a_rolling_upgrade(
    client: Client,
) -> None:
    queue = f"dossiers-upgrade-{uuid.uuid4().hex[:8]}"
    fakes = Fakes()
    now = datetime.now(UTC)

    async def open_group() -> list[WorkflowHandle]:
        handles = []
        for _ in range(PER_GROUP):
            o = opening(now)
            handles.append(
                await client.start_workflow(
                    DossierWorkflow.run, o, id=o.dossier_id, task_queue=queue
                )
            )
        await asyncio.gather(*(settled(h, SETTLE_S) for h in handles))
        return handles

    def diagnosis(n: int) -> DiagnosisCmd:
        return DiagnosisCmd(actor=TECH, kind="usage", context=f"Poste {n}", need="Export FEC")

    async with workers(client, queue, fakes, N):  # 1. before the rollout
        a = await open_group()
        await _each(a, "take", ActorCmd(actor=TECH))
    async with workers(client, queue, fakes, NEXT):  # 2. N restarting
        b = await open_group()
        await _each(a, "diagnose", diagnosis(1))
    async with workers(client, queue, fakes, N):  # 3. N back
        await _each(b, "take", ActorCmd(actor=TECH))
        await _each(b, "diagnose", diagnosis(2))
        await _each(a, "respond", MessageCmd(actor=TECH, text="Cochez « à-nouveaux »."))
    async with workers(client, queue, fakes, N, NEXT):  # 4. side by side
        await _each(b, "respond", MessageCmd(actor=TECH, text="Cochez « à-nouveaux »."))
        for n in range(3):
            await _each(a + b, "note", MessageCmd(actor=TECH, text=f"Suivi {n}."))
    before = [await h.fetch_history() for h in a + b]
    async with workers(client, queue, fakes, NEXT):  # 5. after the rollout
        await _each(a + b, "close", CloseCmd(actor=TECH, resolution="Export paramétré."))
        views = [await h.query(DossierWorkflow.view) for h in a + b]
    assert {view.status for view in views} == {"closed"}

    for group, first in ((a, N), (b, NEXT)):
        for handle in group:
            history = await handle.fetch_history()
            by = _tasks(history)
            assert by[0] == f"worker-{first}", by  # opened on this version
            assert {f"worker-{N}", f"worker-{NEXT}"} <= set(by), by  # and went on the other
            assert by[-1] == f"worker-{NEXT}"
            assert len(_markers(history)) == 1, history.workflow_id  # the branch, once
            memo = await (await handle.describe()).memo()
            assert memo == {"closed_by_version": NEXT, "resolution": "Export paramétré."}
            assert await _replay(NEXT, history) is None
            failure = await _replay(N, history)  # the limit: N cannot follow past the branch
            assert failure is not None and "Nondeterminism" in failure, failure
    for history in before:
        assert _markers(history) == []
        assert await _replay(N, history) is None
        assert await _replay(NEXT, history) is None


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_histories_recorded_on_n_replay_on_n_plus_1(path: Path) -> None:
    history = WorkflowHistory.from_json(
        dossier_id(path.stem), await asyncio.to_thread(path.read_text)
    )
    assert await _replay(NEXT, history) is None
