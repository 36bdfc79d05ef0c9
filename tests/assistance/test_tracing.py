"""One deposit, one trace: HTTP → outbox relay → workflow → activity → NATS consumers."""

from __future__ import annotations

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.helpers import deposit_body, eventually


async def test_one_deposit_is_one_trace(
    http: httpx.AsyncClient, system, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    r = await http.post("/api/v1/requests", json=deposit_body(subject="Trace"))
    assert r.status_code == 201
    provider = trace.get_tracer_provider()

    async def whole_trace() -> set[str] | None:
        provider.force_flush()  # type: ignore[attr-defined]
        finished = spans.get_finished_spans()
        roots = [s for s in finished if s.name == "POST /api/v1/requests" and s.parent is None]
        if not roots:
            return None
        trace_id = roots[0].context.trace_id
        names = {s.name for s in finished if s.context.trace_id == trace_id}
        wanted = {
            "StartWorkflow:DossierWorkflow",
            "RunWorkflow:DossierWorkflow",
            "RunActivity:publish_dossier_event",
            "intake.request.received process",
            "dossier.dossier.opened process",
        }
        return names if wanted <= names else None

    names = await eventually(whole_trace, timeout=15, every=0.3)
    # the database work of the deposit is in the same trace too
    assert any(n.startswith(("INSERT", "SELECT", "BEGIN", "COMMIT")) for n in names), names
