"""One deposit, one trace: HTTP (or a mail's arrival) → outbox relay → workflow → the step's
activity (writing its events and mails to the outbox) → the dossier's relay → NATS publish →
consumers; and no trace at all from an idle system."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.helpers import deposit_body, eventually
from tests.services.intake.mail_helpers import build_mail, send, unique

# what every dossier opening's trace holds, whatever its channel
OPENING = {
    "outbox send start_dossier",
    "outbox send publish",
    "intake.request.received publish",
    "intake.request.received process",
    "StartWorkflow:DossierWorkflow",
    "RunWorkflow:DossierWorkflow",
    "RunActivity:record_dossier_step",
    "outbox send dossier_mail",
    "dossier.dossier.opened publish",
    "dossier.dossier.opened process",
}


def finished(spans: InMemorySpanExporter) -> Sequence[ReadableSpan]:
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    return spans.get_finished_spans()


async def whole_trace(spans: InMemorySpanExporter, root_name: str) -> list[ReadableSpan]:
    """The spans of the trace rooted at `root_name`, once it holds every step of an opening."""

    async def complete() -> list[ReadableSpan] | None:
        done = finished(spans)
        roots = [s for s in done if s.name == root_name and s.parent is None]
        if not roots:
            return None
        trace_id = roots[0].context.trace_id
        members = [s for s in done if s.context.trace_id == trace_id]
        return members if {s.name for s in members} >= OPENING else None

    return await eventually(complete, timeout=20, every=0.3)


def parent_of(members: list[ReadableSpan], name: str) -> str:
    by_id = {s.context.span_id: s for s in members}
    span = next(s for s in members if s.name == name)
    assert span.parent is not None, name
    return by_id[span.parent.span_id].name


def grandparent_of(members: list[ReadableSpan], name: str) -> str:
    by_id = {s.context.span_id: s for s in members}
    span = next(s for s in members if s.name == name)
    assert span.parent is not None, name
    parent = by_id[span.parent.span_id]
    assert parent.parent is not None, parent.name
    return by_id[parent.parent.span_id].name


def assert_tree(members: list[ReadableSpan], root: str) -> None:
    """One root; every other span's parent is in the trace (no orphan); the hops nest."""
    ids = {s.context.span_id for s in members}
    assert [s.name for s in members if s.parent is None] == [root]
    orphans = [s.name for s in members if s.parent is not None and s.parent.span_id not in ids]
    assert orphans == []
    # the relay sends in the trace of the deposit; NATS consumers are the publish's children
    assert parent_of(members, "intake.request.received publish") == "outbox send publish"
    assert parent_of(members, "intake.request.received process") == (
        "intake.request.received publish"
    )
    assert parent_of(members, "StartWorkflow:DossierWorkflow") == "outbox send start_dossier"
    # the step's activity wrote the event to the outbox; its relay sends it in the same trace
    assert parent_of(members, "dossier.dossier.opened publish") == "outbox send publish"
    assert grandparent_of(members, "dossier.dossier.opened publish") == (
        "RunActivity:record_dossier_step"
    )
    assert parent_of(members, "outbox send dossier_mail") == "RunActivity:record_dossier_step"
    assert parent_of(members, "dossier.dossier.opened process") == (
        "dossier.dossier.opened publish"
    )


async def test_a_web_deposit_is_one_trace(
    http: httpx.AsyncClient, system, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    r = await http.post("/api/v1/requests", json=deposit_body(subject="Trace"))
    assert r.status_code == 201
    members = await whole_trace(spans, "POST /api/v1/requests")
    assert_tree(members, "POST /api/v1/requests")
    names = {s.name for s in members}
    # the database work of the deposit is in the same trace too
    assert any(n.startswith(("INSERT", "SELECT", "BEGIN", "COMMIT")) for n in names), names
    for span in members:
        assert span.resource.attributes["service.name"] == "assistance-test"


@pytest.mark.parametrize("protocol", ["smtp", "lmtp"])
async def test_a_mail_deposit_is_one_trace(
    system, spans: InMemorySpanExporter, protocol: str
) -> None:
    spans.clear()
    sender = unique("trace")
    raw = build_mail(sender, subject="[compta] Trace d'un mail")
    settings = system.settings
    port = settings.mail_lmtp_port if protocol == "lmtp" else settings.mail_listen_port
    await send(port, raw, sender, lmtp=protocol == "lmtp")
    members = await whole_trace(spans, f"mail receive {protocol}")
    assert_tree(members, f"mail receive {protocol}")
    root = next(s for s in members if s.parent is None)
    assert root.kind == trace.SpanKind.SERVER
    assert root.attributes is not None and root.attributes["mail.outcome"] == "opened"


async def test_an_idle_system_exports_no_span(system, spans: InMemorySpanExporter) -> None:
    """The relays poll every 0.5 s here, the pool resets every released connection: none of it
    is traced. (Earlier tests' dossiers may still be settling: wait for a first quiet second.)"""

    async def quiet_second() -> bool:
        spans.clear()
        await asyncio.sleep(1.0)
        return not finished(spans)

    await eventually(quiet_second, timeout=20, every=0.1)
    spans.clear()
    await asyncio.sleep(2.5)
    assert [s.name for s in finished(spans)] == []
