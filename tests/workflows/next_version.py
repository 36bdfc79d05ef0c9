"""Version N+1 of the dossier workflow, for the rolling-upgrade test
(tests/workflows/test_rolling_upgrade.py): today's `DossierWorkflow` (version N) with one change,
registered under the same workflow name, as the next release of workflows/dossier.py would be.

The change is harmless and visible: when a dossier is closed, its workflow writes who closed it
and the resolution in its memo (a command: `ModifyWorkflowProperties`). A running dossier
replaying its history must not meet a command its history does not have, so the change is
guarded by `workflow.patched(CHANGE)`, as docs/workflow-versioning.md asks of any change to
what a running dossier does.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from services.dossier.state import DossierOpening, DossierView

from workflows.dossier import DossierWorkflow

CHANGE = "closure-in-memo"
VERSION = "N+1"


@workflow.defn(name="DossierWorkflow")
class DossierWorkflowNext(DossierWorkflow):
    @workflow.run
    async def run(self, opening: DossierOpening) -> str:
        return await super().run(opening)

    async def _command(self, name: str, cmd: Any) -> DossierView:
        view = await super()._command(name, cmd)
        if name == "close" and view.status == "closed" and workflow.patched(CHANGE):
            workflow.upsert_memo({"closed_by_version": VERSION, "resolution": view.resolution})
        return view
