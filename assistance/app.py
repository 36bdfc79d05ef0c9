"""The kernel's app: one process running the parts it is given.

`create_app(settings, parts, schemas, senders, personal_data)` migrates `schemas`, mounts the
routers of `parts` and starts their background work (outbox relays, NATS consumers, the
Temporal worker) in the app's lifespan. It knows no part: which exist, which a process runs,
which outbox senders their relays get and whose personal data hooks it holds is the
composition's choice (`composition/`), so the same code runs every part in one process or
each part alone.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.metrics import NoOpMeterProvider

from assistance import apidocs, headers, idempotency, metrics, readiness, telemetry
from assistance.boundary import BodyLimit, document_refusals
from assistance.db import Migrations
from assistance.parts import Part
from assistance.personal_data import PersonalData
from assistance.runtime import Runtime, SenderFactory, supervise
from assistance.settings import Settings
from assistance.web import install_error_handlers

log = logging.getLogger(__name__)

__all__ = ["Runtime", "api_description", "create_app", "service_name", "supervise"]

API_DESCRIPTION = """
API du centre de service Manao : chaque demande (site, mail, téléphone) devient un dossier
suivi jusqu'à sa clôture, avec un engagement de première réponse sous {delay} (R3).

Authentification : `Authorization: Bearer <jeton>`. Les erreurs ont la forme
`{"error": {"code", "message", "field"}}`. Les écritures acceptent `Idempotency-Key`
(même clé, même corps : la première réponse est rejouée). Une commande de dossier que le suivi
n'a pas traitée à temps répond 202 avec `Location`, où lire son issue.
Les heures sont en ISO 8601 avec décalage, affichées en Europe/Paris.
"""


def api_description(settings: Settings) -> str:
    """The OpenAPI description, with the R3 commitment of these settings."""
    return API_DESCRIPTION.replace("{delay}", settings.commitment().delay_text())


def service_name(settings: Settings, parts: Sequence[Part]) -> str:
    """The process's `service.name` in traces and metrics: `OTEL_SERVICE_NAME`, else named
    after its parts (`assistance-intake`, `assistance-worker`, `assistance-services`,
    `assistance-all`)."""
    if settings.otel_service_name:
        return settings.otel_service_name
    if len(parts) == 1:
        return f"assistance-{parts[0].name}"
    if any(part.runs_worker for part in parts):
        return "assistance-all"
    return "assistance-services"


def _start_parts(rt: Runtime, parts: Sequence[Part]) -> None:
    for part in parts:
        if part.start is not None:
            part.start(rt)


def create_app(
    settings: Settings,
    parts: Sequence[Part],
    schemas: Iterable[Migrations] = (),
    senders: Mapping[str, SenderFactory] | None = None,
    personal_data: Sequence[PersonalData] = (),
) -> FastAPI:
    """An app running `parts`; `schemas` are migrated at start (every part's, so that any
    process can start first: the migrations run once, under an advisory lock); `senders` are
    the outbox senders its parts' relays are given (`Runtime.sender`); `personal_data` are
    every part's hooks (`Runtime.personal_data`), which the RGPD export and erasure call."""
    problem = settings.unsafe_for_production()
    if problem:  # also refused by `assistance run` before anything starts, with this message
        raise RuntimeError(problem)
    chosen = list(parts)
    name = service_name(settings, chosen)
    telemetry.setup_tracing(name, settings.otel_exporter_otlp_endpoint)
    metrics.setup_metrics(
        name, settings.otel_exporter_otlp_endpoint, settings.metrics_export_seconds
    )
    AsyncPGInstrumentor().instrument()
    rt = Runtime(settings, schemas, name=name, senders=senders, personal_data=personal_data)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await rt.open()
        app.state.pool = rt.pool
        app.state.runtime = rt
        _start_parts(rt, chosen)
        try:
            yield
        finally:
            await rt.close()

    app = FastAPI(
        title="Centre de service Manao",
        version="1.0.0",
        description=api_description(settings),
        lifespan=lifespan,
        docs_url=None,  # served from local assets: assistance/apidocs.py
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.calendar = rt.calendar
    install_error_handlers(app)
    # every write under /api/v1 honours `Idempotency-Key`; first, so that middleware added
    # later (the body cap) runs before it
    idempotency.install(app)
    # Issue 11: no body is read whole past its cap (413), every refusal is in the OpenAPI.
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes
    )
    _mount_health(app, rt, chosen)
    _mount_metrics(app, rt)
    _mount_index(app)
    for part in chosen:
        if part.router is not None:
            app.include_router(part.router)
    # HTTP metrics are ours (route templates, assistance/metrics.py); its spans only
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz,metrics", meter_provider=NoOpMeterProvider()
    )
    app.add_middleware(metrics.HttpMetrics)
    document_refusals(app)
    apidocs.install(app)
    headers.install(app)  # issue 13: every response, errors and files included
    return app


def _mount_health(app: FastAPI, rt: Runtime, parts: Sequence[Part]) -> None:
    @app.get("/healthz", tags=["operations"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness of each dependency")
    async def readyz(request: Request) -> JSONResponse:
        """Each dependency by name, up or down (assistance/readiness.py); 503 when one that
        commands need is down, with `deposits` saying whether deposits are still accepted."""
        return readiness.response(*await probes.report())

    probes = readiness.Readiness(rt, parts)


def _mount_metrics(app: FastAPI, rt: Runtime) -> None:
    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        """Every series of this process, Prometheus text format. No authentication: reachable
        only from the monitoring network in production (README, "Operating it")."""
        await rt.snapshot.refresh()
        return Response(metrics.prometheus_text(), media_type=metrics.PROMETHEUS_CONTENT_TYPE)


def _mount_index(app: FastAPI) -> None:
    @app.get("/api/v1", tags=["operations"], summary="Index of the API")
    async def index() -> dict[str, str]:
        """Where to go from here (the first URL `make run` prints)."""
        return {
            "name": app.title,
            "version": app.version,
            "site": "/",
            "documentation": "/docs",
            "openapi": "/openapi.json",
            "liveness": "/healthz",
            "readiness": "/readyz",
        }
