"""The composition (composition/parts.py): every part declared once, in the order the
migrations have always been applied, each with what the kernel needs to run it."""

from __future__ import annotations

from importlib import resources
from typing import Any, cast

import pytest

from assistance.db import KERNEL
from assistance.runtime import Runtime
from assistance.settings import Settings
from composition.parts import (
    PARTS,
    PERSONAL_DATA,
    SENDERS,
    SERVICES,
    TARGETS,
    all_schemas,
    choose,
    demo_hooks,
)


def test_the_targets_are_the_parts_in_order() -> None:
    assert TARGETS == (
        "intake",
        "dossier",
        "training",
        "bugs",
        "evolutions",
        "operations",
        "site",
        "worker",
    )
    assert TARGETS[:-1] == SERVICES


def test_the_schemas_are_migrated_in_their_historic_order() -> None:
    """The kernel first (db.migrate adds it), then the parts that own a schema."""
    assert [(m.component, m.package) for m in all_schemas()] == [
        ("intake", "services.intake"),
        ("dossier", "services.dossier"),
        ("training", "services.training"),
        ("bugs", "services.bugs"),
        ("evolutions", "services.evolutions"),
        ("site", "services.site"),
    ]
    assert KERNEL not in all_schemas()
    for schema in [KERNEL, *all_schemas()]:
        folder = resources.files(schema.package) / "migrations"
        assert any(f.name.endswith(".sql") for f in folder.iterdir()), schema


def test_every_service_serves_routes_and_only_the_worker_has_none() -> None:
    assert [p.name for p in PARTS if p.router is None] == ["worker"]
    assert [p.name for p in PARTS if p.start is None] == ["site"]


def test_what_readiness_is_told() -> None:
    def named(flag: str) -> list[str]:
        return [p.name for p in PARTS if getattr(p, flag)]

    assert named("uses_temporal") == ["intake", "dossier", "evolutions", "site", "worker"]
    assert named("sends_commands") == ["dossier", "site"]
    assert named("runs_worker") == ["worker"]
    assert named("takes_deposits") == ["intake"]


def test_targets_choose_parts() -> None:
    assert [p.name for p in choose(["worker", "intake"])] == ["intake", "worker"]
    assert [p.name for p in choose(["all"])] == list(TARGETS)
    with pytest.raises(ValueError, match="unknown target 'nope'"):
        choose(["nope"])


def test_the_demo_hooks() -> None:
    """Two parts add demo data: training (the demo trainer teaches every demo software, R7)
    and evolutions (its product manager owns the demo softwares, R9), in the parts' order."""
    assert [hook.__module__ for hook in demo_hooks()] == [
        "services.training.main",
        "services.evolutions.main",
    ]


def test_the_workflows_reach_the_services_through_the_composition() -> None:
    """The services import no workflow (tests/test_architecture.py): intake's relay is given
    the start and the signal of dossier workflows (`Runtime.sender`), and the process running
    evolutions keeps the weekly reviews' schedules, both wired here."""
    rt = Runtime(Settings(), senders=SENDERS)
    rt.temporal = cast(Any, object())
    started: list[str] = []
    rt.background = lambda name, start: started.append(name)  # type: ignore[method-assign]
    for part in choose(["intake", "evolutions"]):
        assert part.start is not None
        part.start(rt)
    assert started[0] == "intake outbox relay"
    assert started[-3:] == [
        "evolutions outbox relay",
        "evolutions hand-over",
        "evolutions review schedules",
    ]
    assert set(SENDERS) == {"start_dossier", "signal_dossier"}
    with pytest.raises(LookupError, match="no sender given for outbox kind 'nope'"):
        rt.sender("nope")


def test_every_part_with_a_schema_exports_and_erases_its_personal_data() -> None:
    """The RGPD export and erasure (decision 0024) reach each schema through its part's hooks,
    which the composition gives every process (`Runtime.personal_data`), in the parts' order:
    the operations part reads no other schema. Exactly one part, the dossier read model, tells
    which dossiers are closed and which are due for retention."""
    with_schema = [p.name for p in PARTS if p.migrations is not None]
    assert [p.name for p in PARTS if p.personal_data is not None] == with_schema
    assert tuple(p.personal_data for p in PARTS if p.personal_data is not None) == PERSONAL_DATA
    assert all(h.erase is not None for h in PERSONAL_DATA)
    assert [p.name for p in PARTS if p.personal_data and p.personal_data.closed] == ["dossier"]
    assert [p.name for p in PARTS if p.personal_data and p.personal_data.expired] == ["dossier"]
    assert [p.name for p in PARTS if p.personal_data and p.personal_data.find] == [
        "intake",
        "dossier",
    ]
    rt = Runtime(Settings(), personal_data=PERSONAL_DATA)
    assert rt.personal_data == list(PERSONAL_DATA)
