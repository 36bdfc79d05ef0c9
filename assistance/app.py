"""Composition: the same code runs every part in one process or each part alone.

`create_app(settings, targets)` mounts the routers of the chosen services and starts their
background work (outbox relay, NATS consumers, the Temporal worker) in the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from temporalio.client import Client

from assistance import db, failures, idempotency, readiness, telemetry
from assistance import temporal as temporal_client
from assistance.bus import Bus
from assistance.settings import Settings

log = logging.getLogger(__name__)

SERVICES = ("intake", "dossier", "training", "bugs", "evolutions", "operations", "site")
TARGETS = (*SERVICES, "worker")

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


async def supervise(name: str, start: Callable[[], Awaitable[Any]]) -> None:
    """Keep a background part running: restart it with backoff when it stops or fails."""
    delay = 0.5
    while True:
        try:
            await start()
            log.warning("%s stopped; restarting", name)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - logged and restarted, never fatal to the process
            log.exception("%s failed; restarting in %.1fs", name, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)


def _expand(targets: Iterable[str]) -> set[str]:
    chosen: set[str] = set()
    for target in targets:
        if target == "all":
            chosen.update(TARGETS)
        elif target in TARGETS:
            chosen.add(target)
        else:
            raise ValueError(f"unknown target {target!r}; choose from all, {', '.join(TARGETS)}")
    return chosen


class Runtime:
    """What a process holds open once: the pool, the bus, the Temporal client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.calendar = settings.calendar()
        self.pool: Any = None
        self.bus = Bus(
            settings.nats_url,
            name=settings.otel_service_name,
            replicas=settings.nats_replicas,
            policy=failures.policy_from(settings),
        )
        self.temporal: Client | None = None
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        await db.migrate(self.settings.database_url)
        self.pool = await db.create_pool(
            self.settings.database_url, self.settings.database_pool_size
        )
        await self.bus.connect(wait=False)
        self.temporal = await temporal_client.connect(
            self.settings.temporal_address, self.settings.temporal_namespace
        )
        self.background("nats streams", self._streams)

    async def _streams(self) -> None:
        await self.bus.wait_connected()
        await self.bus.ensure_streams()
        await asyncio.Event().wait()  # done; stay parked so supervise does not rerun it

    def background(self, name: str, start: Callable[[], Awaitable[Any]]) -> None:
        self.tasks.append(asyncio.create_task(supervise(name, start), name=name))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.bus.close()
        if self.pool is not None:
            await self.pool.close()


def service_module(name: str) -> ModuleType:
    """`services/<name>/main.py`: an optional `router` and an optional `start(rt)`."""
    return importlib.import_module(f"services.{name}.main")


def _start_parts(rt: Runtime, chosen: set[str]) -> None:
    for name in SERVICES:
        if name in chosen:
            start = getattr(service_module(name), "start", None)
            if start is not None:
                start(rt)
    if "worker" in chosen:
        from workflows import bridge, worker

        worker.start(rt)
        bridge.start(rt)


def create_app(settings: Settings, targets: Iterable[str] = ("all",)) -> FastAPI:
    chosen = _expand(targets)
    telemetry.setup_tracing(settings.otel_service_name, settings.otel_exporter_otlp_endpoint)
    AsyncPGInstrumentor().instrument()
    rt = Runtime(settings)

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
    )
    app.state.settings = settings
    app.state.calendar = rt.calendar
    from assistance.boundary import BodyLimit, document_refusals
    from assistance.web import install_error_handlers

    install_error_handlers(app)
    # every write under /api/v1 honours `Idempotency-Key`; first, so that middleware added
    # later (the body cap) runs before it
    idempotency.install(app)
    # Issue 11: no body is read whole past its cap (413), every refusal is in the OpenAPI.
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes
    )
    _mount_health(app, rt, chosen)
    _mount_index(app)
    for name in SERVICES:
        router = getattr(service_module(name), "router", None) if name in chosen else None
        if router is not None:
            app.include_router(router)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz")
    document_refusals(app)
    return app


def _mount_health(app: FastAPI, rt: Runtime, parts: set[str]) -> None:
    @app.get("/healthz", tags=["operations"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness of each dependency")
    async def readyz(request: Request) -> JSONResponse:
        """Each dependency by name, up or down (assistance/readiness.py); 503 when one that
        commands need is down, with `deposits` saying whether deposits are still accepted."""
        return readiness.response(*await probes.report())

    probes = readiness.Readiness(rt, parts)


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
