"""The one hand-over contract and responder (docs/contracts.md §1; R7–R9)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from typing import Any

import nats
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from assistance import telemetry
from assistance.handover import HandOver, command_subject, refusal
from services.bugs.models import HandOverIn as BugsHandOver
from services.evolutions.models import HandOverIn as EvolutionsHandOver
from services.training.models import HandOverIn as TrainingHandOver
from tests.helpers import eventually
from workflows.types import HandOver as WorkflowHandOver

SERVICES = {"training": TrainingHandOver, "bugs": BugsHandOver, "evolutions": EvolutionsHandOver}


def order(service: str = "bugs", **overrides: Any) -> dict[str, Any]:
    """The JSON the workflow's `hand_over` activity sends."""
    sent = WorkflowHandOver(
        service=service,
        dossier_id=str(uuid.uuid4()),
        reference="D-2026-000042",
        software="manao-compta",
        organisation_id=None,
        requester_email="claire.martin@dupont-sa.fr",
        requester_name="Claire Martin",
        subject="Export FEC impossible",
        description="L'export s'arrête à 50 %.",
        context="Clôture mensuelle",
        need="Exporter le FEC",
        version="5.2",
        workaround=None,
    )
    return {**json.loads(json.dumps(asdict(sent))), **overrides}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_reads_what_the_workflow_sends(service: str) -> None:
    model = SERVICES[service]
    assert issubclass(model, HandOver)
    parsed = model.model_validate_json(json.dumps(order(service)))
    assert parsed.service == service
    assert parsed.attempt == 1
    # a service only takes its own hand-overs
    other = "bugs" if service != "bugs" else "training"
    with pytest.raises(ValidationError):
        model.model_validate_json(json.dumps(order(other)))


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_one_set_of_limits_for_every_service(service: str) -> None:
    model = SERVICES[service]
    # the longest a diagnosis or a mail deposit can give is accepted everywhere
    big = order(service, description="x" * 50_000, context="c" * 20_000, need="n" * 20_000)
    assert len(model.model_validate(big).description) == 50_000
    for field, value in (
        ("description", "x" * 50_001),
        ("subject", "s" * 1001),
        ("reference", "r" * 65),
        ("requester_email", "pas une adresse"),
        ("attempt", 0),
    ):
        with pytest.raises(ValidationError) as refused:
            model.model_validate(order(service, **{field: value}))
        assert refusal(refused.value)["error"].startswith(f"invalid hand-over: {field}: ")


def test_nul_characters_are_dropped_never_refused() -> None:
    parsed = TrainingHandOver.model_validate(order("training", need="Exporter\x00 le FEC"))
    assert parsed.need == "Exporter le FEC"


def test_a_missing_dossier_is_named_first() -> None:
    body = order()
    del body["dossier_id"], body["service"]
    with pytest.raises(ValidationError) as refused:
        HandOver.model_validate(body)
    assert refusal(refused.value) == {
        "ok": False,
        "error": "invalid hand-over: dossier_id: Field required",
    }


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_every_responder_continues_the_callers_trace(
    service: str, system, spans: InMemorySpanExporter
) -> None:
    """The workflow's activity injects its trace context; every service's responder serves the
    request in a span of that same trace (the bugs one used to start a new trace)."""
    nc = await nats.connect(system.settings.nats_url)
    try:
        with telemetry.tracer("test").start_as_current_span("hand over") as caller:
            headers = telemetry.inject()
            reply = await nc.request(
                command_subject(service), b'{"service": "nobody"}', timeout=10, headers=headers
            )
    finally:
        await nc.close()
    assert json.loads(reply.data) == {
        "ok": False,
        "error": "invalid hand-over: dossier_id: Field required",
    }
    trace_id = caller.get_span_context().trace_id

    async def served() -> bool:
        trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
        return any(
            s.name == f"commands.{service}.open process"
            and s.context.trace_id == trace_id
            and s.kind is trace.SpanKind.SERVER
            for s in spans.get_finished_spans()
        )

    assert await eventually(served, timeout=10, every=0.1)
