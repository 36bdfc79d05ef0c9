"""Replay of recorded histories: the current DossierWorkflow must make the same decisions.

The histories under `histories/` come from `python -m tests.workflows.record_histories`. A
change to the workflow that running dossiers could not follow (commands in another order,
another timer, an activity more) fails here; make it behind `workflow.patched(...)` instead.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from assistance.temporal import data_converter
from tests.workflows.record_histories import HISTORIES, SCENARIOS, dossier_id
from workflows.dossier import DossierWorkflow

RECORDED = sorted(HISTORIES.glob("*.json"))


def test_every_main_path_has_a_recorded_history() -> None:
    assert sorted(p.stem for p in RECORDED) == sorted(SCENARIOS)


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(
        dossier_id(path.stem), await asyncio.to_thread(path.read_text)
    )
    replayer = Replayer(workflows=[DossierWorkflow], data_converter=data_converter)
    result = await replayer.replay_workflow(history)  # raises on non-determinism
    assert result.replay_failure is None
