"""The dossier workflow's logic is deterministic, and the sandbox can see that it stays so.

- No module with workflow logic reads the clock, draws random numbers or makes ids: an AST
  scan of workflows/, of the dossier process (services/dossier/process.py, domain.py) and of
  the weekly review's data (services/evolutions/review_types.py).
- The workflow passes through the sandbox only libraries and data (the business calendar,
  pydantic events, the dataclasses of services/dossier/state.py): the process and the rules
  are imported inside it, under its restrictions, so `datetime.now()` in them fails at run.
- The activities the workflow calls by reference (workflows/activities.py) have the names
  and signatures of those the worker registers.
"""

from __future__ import annotations

import ast
import inspect
import uuid
from pathlib import Path
from typing import Any, get_type_hints

import pytest
from temporalio import activity
from temporalio.worker import Worker

from services.dossier.activities import DossierActivities
from services.dossier.handover import HandOverActivities
from tests.workflows.harness import time_skipping
from tests.workflows.sandbox_probe import SandboxProbe
from workflows import activities as stubs

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_LOGIC = sorted(
    [
        *(ROOT / "workflows").glob("*.py"),
        ROOT / "services/dossier/process.py",
        ROOT / "services/dossier/domain.py",
        ROOT / "services/dossier/state.py",
        ROOT / "services/evolutions/review_types.py",
        ROOT / "assistance/commitment.py",
        ROOT / "assistance/french.py",
    ]
)
# calls that differ from one run (or replay) to the next
FORBIDDEN_CALLS = {
    "now",
    "utcnow",
    "today",
    "time",
    "time_ns",
    "monotonic",
    "monotonic_ns",
    "perf_counter",
    "uuid1",
    "uuid4",
    "urandom",
    "getrandbits",
    "token_hex",
    "token_bytes",
    "getenv",
}
FORBIDDEN_MODULES = {"random", "secrets", "time", "os", "threading", "socket", "subprocess"}
# what the workflow may pass through the sandbox: libraries and data, no workflow logic
PASSED_THROUGH = {
    "assistance.business_time",
    "assistance.commitment",
    "assistance.events",
    "assistance.french",
    "services.dossier.state",
}


def _calls(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            on_workflow = isinstance(f, ast.Attribute) and ast.unparse(f.value) == "workflow"
            if name in FORBIDDEN_CALLS and not on_workflow:  # workflow.now() is the clock
                found.append((node.lineno, ast.unparse(f)))
    return found


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("path", WORKFLOW_LOGIC, ids=lambda p: str(p.relative_to(ROOT)))
def test_workflow_logic_reads_no_clock_and_draws_no_chance(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    assert _calls(tree) == []
    assert [(n, m) for n, m in _imports(tree) if m.split(".")[0] in FORBIDDEN_MODULES] == []


def test_the_scan_catches_what_it_looks_for() -> None:
    source = "import random\nx = datetime.now()\ny = uuid4()\nz = workflow.now()\n"
    tree = ast.parse(source)
    assert _calls(tree) == [(2, "datetime.now"), (3, "uuid4")]
    assert (1, "random") in _imports(tree)


def _passed_through(path: Path) -> set[str]:
    """Modules imported inside a `workflow.unsafe.imports_passed_through()` block."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.With) and any(
            "imports_passed_through" in ast.unparse(item.context_expr) for item in node.items
        ):
            for statement in node.body:
                modules |= {m for _, m in _imports(statement)}
    return modules


def test_only_libraries_and_data_pass_through_the_sandbox() -> None:
    for path in (ROOT / "workflows").glob("*.py"):
        assert _passed_through(path) <= PASSED_THROUGH, path.name
    assert _passed_through(ROOT / "workflows/dossier.py") == PASSED_THROUGH


async def test_the_process_runs_under_the_sandbox_restrictions() -> None:
    """`datetime.now()` in the process or the rules is refused when a workflow runs them (in the
    data module, passed through, it would not be: the probe sees the difference)."""
    async with time_skipping() as env:
        queue = f"probe-{uuid.uuid4().hex[:8]}"
        async with Worker(env.client, task_queue=queue, workflows=[SandboxProbe]):
            refused = await env.client.execute_workflow(
                SandboxProbe.run, id=f"probe-{uuid.uuid4()}", task_queue=queue
            )
    assert refused == {
        "services.dossier.process": True,
        "services.dossier.domain": True,
        "services.dossier.state": False,
    }


def _signature(fn: Any) -> tuple[str, list[Any], Any]:
    hints = get_type_hints(fn)
    params = [p for p in inspect.signature(fn).parameters if p != "self"]
    defn = activity._Definition.must_from_callable(fn)
    return defn.name, [hints[p] for p in params], hints["return"]


def test_the_activity_stubs_match_the_registered_activities() -> None:
    registered = [
        DossierActivities.publish_event,
        DossierActivities.send_mail,
        DossierActivities.notify_staff,
        DossierActivities.record_step,
        HandOverActivities.hand_over,
    ]
    assert [_signature(f) for f in stubs.DOSSIER_ACTIVITIES] == [_signature(f) for f in registered]
