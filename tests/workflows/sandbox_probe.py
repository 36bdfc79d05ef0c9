"""A workflow that loads the dossier workflow's modules as a worker does, inside the sandbox,
and reports which of them the sandbox restricts (tests/workflows/test_determinism.py)."""

from __future__ import annotations

import sys

from temporalio import workflow
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

from workflows import dossier

# as the workflow imports them (the business calendar passes through before the rules load)
process = dossier.process
domain = process.domain
state = dossier.DossierState.__module__  # passed through: data only


@workflow.defn
class SandboxProbe:
    @workflow.run
    async def run(self) -> dict[str, bool]:
        """For each module: True if `datetime.now()` written in it is refused."""
        refused: dict[str, bool] = {}
        for module in (process, domain, sys.modules[state]):
            try:
                module.datetime.now()  # type: ignore[attr-defined]
                refused[module.__name__] = False
            except RestrictedWorkflowAccessError:
                refused[module.__name__] = True
        return refused
