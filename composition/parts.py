"""Every part of the system, in the order their schemas are migrated and their routers mounted,
the outbox senders the workflows give the services, and every part's personal data hooks.

A part is a service (`services/<name>/main.py` declares its `part`) or the Temporal worker;
`assistance run --target <name>` runs one, `--target all` every one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from assistance.db import Migrations
from assistance.parts import DemoHook, Part, personal_data, schemas
from services.bugs.main import part as bugs
from services.dossier.main import part as dossier
from services.evolutions.main import part as evolutions
from services.intake.main import part as intake
from services.intake.relay import SIGNAL_DOSSIER, START_DOSSIER
from services.operations.main import part as operations
from services.site.main import part as site
from services.training.main import part as training
from workflows import review_schedules, senders

if TYPE_CHECKING:
    from assistance.personal_data import PersonalData
    from assistance.runtime import Runtime, SenderFactory


def _start_worker(rt: Runtime) -> None:
    # imported here: the worker, its activities and the bridge load only in a process running it
    from workflows import bridge, worker

    worker.start(rt)
    bridge.start(rt)


# The Temporal worker: the dossier workflows, the weekly reviews, their activities, and the
# bridge signalling NATS events to the workflows. It has no routes and no schema of its own.
WORKER = Part("worker", start=_start_worker, uses_temporal=True, runs_worker=True)


# What the workflows give the services, which do not import them (docs/architecture.md):
# intake's relay starts and signals the dossiers' workflows with these senders of its outbox
# rows (`Runtime.sender`); the process running evolutions keeps the schedules of its
# softwares' weekly reviews (R9).
SENDERS: dict[str, SenderFactory] = {
    START_DOSSIER: senders.dossier_starter,
    SIGNAL_DOSSIER: senders.dossier_signaller,
}


def _start_evolutions(rt: Runtime) -> None:
    assert evolutions.start is not None
    evolutions.start(rt)
    review_schedules.start(rt)


SERVICE_PARTS: tuple[Part, ...] = (
    intake,
    dossier,
    training,
    bugs,
    replace(evolutions, start=_start_evolutions),
    operations,
    site,
)
PARTS: tuple[Part, ...] = (*SERVICE_PARTS, WORKER)
SERVICES = tuple(part.name for part in SERVICE_PARTS)
TARGETS = tuple(part.name for part in PARTS)
# Every part's hooks, whichever parts a process runs: the operations part exports and erases a
# person in every schema by calling them (`Runtime.personal_data`), reading none itself.
PERSONAL_DATA: tuple[PersonalData, ...] = tuple(personal_data(PARTS))


def choose(targets: Iterable[str]) -> list[Part]:
    """The parts named by these targets (`all`: every part), in the parts' order."""
    names: set[str] = set()
    for target in targets:
        if target == "all":
            names.update(TARGETS)
        elif target in TARGETS:
            names.add(target)
        else:
            raise ValueError(f"unknown target {target!r}; choose from all, {', '.join(TARGETS)}")
    return [part for part in PARTS if part.name in names]


def all_schemas(names: Iterable[str] | None = None) -> list[Migrations]:
    """Every part's migrations (or only those of the named parts), in the parts' order."""
    wanted = set(names) if names is not None else None
    return schemas(p for p in PARTS if wanted is None or p.name in wanted)


def demo_hooks() -> list[DemoHook]:
    """Each part's additions to the demo directory (assistance/demo.py)."""
    return [part.demo for part in PARTS if part.demo is not None]
