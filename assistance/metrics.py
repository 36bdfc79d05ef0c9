"""Metrics: OpenTelemetry SDK instruments, read in Prometheus text on `GET /metrics` of every
process, and pushed by OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (docs/decisions/0021).

Two kinds of series:
- counted where things happen: HTTP requests (route template, status code) and their latency,
  deposits by channel, mails sent and refused;
- read from the system's state on collection (observable instruments): open dossiers, the time
  left to each open first-response commitment (R3), breaches, the outbox, parked items, the
  consumers' lag. A part registers what it owns (`Runtime.observe`); the readings are taken
  by an async `Snapshot.refresh` (a few cheap queries) at most every `METRICS_CACHE_SECONDS`,
  and the instruments' callbacks only read the last snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistance import telemetry

if TYPE_CHECKING:
    import asyncpg

    from assistance.bus import Bus

log = logging.getLogger(__name__)

_meter = metrics.get_meter("assistance")

HTTP_REQUESTS = _meter.create_counter(
    "assistance.http.requests", description="HTTP requests by method, route and status code"
)
HTTP_DURATION = _meter.create_histogram(
    "assistance.http.request.duration",
    unit="s",
    description="HTTP request latency by method, route and status code",
    explicit_bucket_boundaries_advisory=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
)
DEPOSITS = _meter.create_counter(
    "assistance.deposits", description="Requests stored by intake, by channel (web, phone, mail)"
)
MAILS_SENT = _meter.create_counter(
    "assistance.mails.sent", description="Mails handed to the mail server, by kind"
)
MAILS_REFUSED = _meter.create_counter(
    "assistance.mails.refused", description="Mails the mail server refused for good, by kind"
)

# R3: business minutes left to an open first-response commitment; the bucket bounds.
TIME_LEFT_BOUNDS = (0.0, 15.0, 30.0, 60.0, 120.0, 240.0, 480.0)

_configured = False


def setup_metrics(service_name: str, otlp_endpoint: str = "", export_seconds: float = 15.0) -> None:
    """Install the process's meter provider once: Prometheus always, OTLP when configured."""
    global _configured
    if _configured:
        return
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    readers: list[MetricReader] = [PrometheusMetricReader(scope_info_enabled=False)]
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/metrics")
        readers.append(
            PeriodicExportingMetricReader(exporter, export_interval_millis=export_seconds * 1000)
        )
    resource = Resource.create({"service.name": service_name})
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
    _configured = True


def prometheus_text() -> bytes:
    """Every series of this process in Prometheus text format."""
    from prometheus_client import REGISTRY, generate_latest

    return generate_latest(REGISTRY)


PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HttpMetrics:
    """ASGI middleware: every HTTP request counted and timed by its route template (never its
    path: bounded labels), method and status code."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            attributes = {
                "http.request.method": scope.get("method", ""),
                "http.route": getattr(route, "path", None) or "unmatched",
                "http.response.status_code": status,
            }
            HTTP_REQUESTS.add(1, attributes)
            HTTP_DURATION.record(time.perf_counter() - started, attributes)


# --- readings of the system's state ---------------------------------------------------------

Readings = dict[tuple[tuple[str, str], ...], float]
Reader = Callable[[], Awaitable[dict[str, Readings]]]


class Snapshot:
    """The last readings of the registered readers, refreshed at most every `max_age` s."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self.readers: list[Reader] = []
        self.values: dict[str, Readings] = {}
        self._taken_at: float | None = None
        self._lock = asyncio.Lock()
        self._seen: dict[str, set[tuple[tuple[str, str], ...]]] = {}

    def add(self, reader: Reader) -> None:
        self.readers.append(reader)
        self._taken_at = None

    def remove(self, reader: Reader) -> None:
        if reader in self.readers:
            self.readers.remove(reader)

    async def refresh(self, *, force: bool = False) -> None:
        async with self._lock:
            now = time.monotonic()
            if not force and self._taken_at is not None and now - self._taken_at < self.max_age:
                return
            values: dict[str, Readings] = {}
            for reader in self.readers:
                try:
                    with telemetry.quiet():  # housekeeping: no span
                        values.update(await reader())
                except Exception as exc:  # noqa: BLE001 - a dependency down: keep the last ones
                    log.info("metrics reading failed: %r", exc)
                    for name, readings in self.values.items():
                        values.setdefault(name, readings)
            self.values = values
            self._taken_at = now

    def observe(self, name: str) -> Iterable[Observation]:
        """The readings of `name`; a series seen once and gone now reads 0 (not vanished)."""
        readings = self.values.get(name, {})
        seen = self._seen.setdefault(name, set())
        seen.update(readings)
        return [Observation(readings.get(key, 0.0), dict(key)) for key in sorted(seen)]

    def callback(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def read(_: CallbackOptions) -> Iterable[Observation]:
            return self.observe(name)

        return read


# One snapshot per process; the parts running here add their readers (`Runtime.observe`).
SNAPSHOT = Snapshot(5.0)

OPEN_DOSSIERS = "assistance.dossiers.open"
TIME_LEFT = "assistance.commitment.time_left.minutes.bucket"
TIME_LEFT_COUNT = "assistance.commitment.time_left.minutes.count"
AT_RISK = "assistance.commitments.at_risk"
BREACHES = "assistance.commitment.breaches"
OUTBOX_PENDING = "assistance.outbox.pending"
OUTBOX_OLDEST = "assistance.outbox.oldest.age.seconds"
PARKED = "assistance.parked.open"
CONSUMER_PENDING = "assistance.consumer.pending"
CONSUMER_ACK_PENDING = "assistance.consumer.ack_pending"

_GAUGES = {
    OPEN_DOSSIERS: "Open dossiers by state and kind (the read model)",
    TIME_LEFT: "R3: open first-response commitments with at most `le` business minutes left",
    TIME_LEFT_COUNT: "R3: open first-response commitments",
    AT_RISK: "R3: open commitments past the warning point, by whether a technician has them",
    OUTBOX_PENDING: "Outbox rows waiting to be sent, by source",
    OUTBOX_OLDEST: "Age of the oldest pending outbox row, seconds (0: none)",
    PARKED: "Parked items waiting for a person (bus.parked open), by source",
    CONSUMER_PENDING: "Messages not yet delivered to a durable consumer (JetStream num_pending)",
    CONSUMER_ACK_PENDING: "Messages delivered to a durable consumer and not yet acknowledged",
}
for _name, _description in _GAUGES.items():
    _meter.create_observable_gauge(
        _name, callbacks=[SNAPSHOT.callback(_name)], description=_description
    )
_meter.create_observable_counter(
    BREACHES,
    callbacks=[SNAPSHOT.callback(BREACHES)],
    description="R3: first-response commitments breached (dossier.breaches)",
)


def labels(**values: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in values.items()))


def time_left_buckets(minutes: Iterable[float]) -> Readings:
    """A histogram of the current values (a gauge histogram): per bound, how many are at most
    that; `+Inf` is the count."""
    values = list(minutes)
    readings: Readings = {
        labels(le=_bound(bound)): float(sum(1 for m in values if m <= bound))
        for bound in TIME_LEFT_BOUNDS
    }
    readings[labels(le="+Inf")] = float(len(values))
    return readings


def _bound(bound: float) -> str:
    return str(int(bound)) if bound == int(bound) else str(bound)


def bus_reader(pool: asyncpg.Pool, bus: Bus) -> Reader:
    """The kernel's own series: the outbox, the parked items, the durable consumers' lag."""

    async def read() -> dict[str, Readings]:
        async with pool.acquire() as conn:
            pending = await conn.fetch(
                "SELECT source, count(*) AS n FROM bus.outbox WHERE status = 'pending' "
                "GROUP BY source"
            )
            oldest = await conn.fetchval(
                "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 "
                "FROM bus.outbox WHERE status = 'pending'"
            )
            parked = await conn.fetch(
                "SELECT source, count(*) AS n FROM bus.parked WHERE state = 'open' GROUP BY source"
            )
        values: dict[str, Readings] = {
            OUTBOX_PENDING: {labels(source=r["source"]): float(r["n"]) for r in pending},
            OUTBOX_OLDEST: {(): float(oldest)},
            PARKED: {labels(source=r["source"]): float(r["n"]) for r in parked},
        }
        if bus.connected:
            lag: Readings = {}
            acks: Readings = {}
            for stream in sorted(_streams()):
                try:
                    consumers = await bus.js.consumers_info(stream)
                except Exception:  # noqa: BLE001 - stream not created yet
                    continue
                for info in consumers:
                    key = labels(stream=stream, consumer=info.name)
                    lag[key] = float(info.num_pending or 0)
                    acks[key] = float(info.num_ack_pending or 0)
            values[CONSUMER_PENDING] = lag
            values[CONSUMER_ACK_PENDING] = acks
        return values

    return read


def _streams() -> Iterable[str]:
    from assistance.bus import STREAMS

    return STREAMS.keys()
