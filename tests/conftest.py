"""Test fixtures: the real stack (Temporal, NATS JetStream, PostgreSQL), started once per run.

Nothing here is a mock: servers are the embedded ones the stack module starts on free ports.
`TEST_DATABASE_URL` may point at an existing PostgreSQL; a fresh database is created on it.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assistance import db, telemetry
from assistance.directory import Role
from assistance.settings import Settings
from composition.app import create_app, load_demo
from deploy.local.stack import Endpoints, LocalStack, StackConfig, create_database, free_port
from tests.helpers import LIVENESS_FLOOR_S

SPANS = InMemorySpanExporter()
# A session's teardown that takes longer than this is a defect (something holds a connection or
# ignores cancellation): it fails with the stack of every asyncio task, which a thread dump
# (pytest-timeout's) cannot show.
TEARDOWN_BOUND_S = 120.0


async def _bounded(what: str, awaitable: Awaitable[object]) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(awaitable), TEARDOWN_BOUND_S)
    except TimeoutError:
        out = io.StringIO()
        for task in asyncio.all_tasks():
            print(f"--- {task.get_name()}: {task.get_coro()!r}", file=out)
            task.print_stack(file=out)
        raise AssertionError(
            f"{what} did not end in {TEARDOWN_BOUND_S:.0f} s:\n{out.getvalue()}"
        ) from None


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    config = StackConfig(
        data_dir=tmp_path_factory.mktemp("stack"),
        database_url=os.environ.get("TEST_DATABASE_URL") or None,
        persistent=True,  # restarts in the outage tests keep Temporal's and NATS's state
        ui=False,
    )
    local = LocalStack(config, progress=lambda line: print(line, flush=True))
    await local.start()
    wait_for = local.mail.wait_for

    async def patient(predicate=lambda _: True, timeout: float = 10.0):  # type: ignore[no-untyped-def]
        # mail waits are liveness bounds too (see tests.helpers.eventually), never speed checks
        return await wait_for(predicate, max(timeout, LIVENESS_FLOOR_S))

    local.mail.wait_for = patient  # type: ignore[method-assign]
    try:
        yield local
    finally:
        await _bounded("the stack's stop", local.stop())


@pytest.fixture(scope="session")
async def endpoints(stack: LocalStack) -> Endpoints:
    assert stack.endpoints is not None
    return stack.endpoints


@pytest.fixture(scope="session")
async def settings(endpoints: Endpoints) -> Settings:
    database_url = await create_database(endpoints.database_url, f"t_{uuid.uuid4().hex[:12]}")
    port = _free_port()
    return Settings(
        database_url=database_url,
        temporal_address=endpoints.temporal_address,
        temporal_task_queue=f"dossiers-{uuid.uuid4().hex[:8]}",
        nats_url=endpoints.nats_url,
        smtp_host=endpoints.smtp_host,
        smtp_port=endpoints.smtp_port,
        http_port=port,
        public_url=f"http://127.0.0.1:{port}",
        relay_poll_seconds=0.5,
        operations_notify_seconds=1.0,
        mail_listen_port=free_port(),
        mail_lmtp_port=free_port(),
    )


@dataclass
class Running:
    base_url: str
    settings: Settings
    tokens: dict[Role, str]
    app: object


@pytest.fixture(scope="session")
async def system(settings: Settings) -> AsyncIterator[Running]:
    """The whole system, all parts in this process, served over real HTTP."""
    telemetry.setup_tracing("assistance-test", "", SPANS)
    app = create_app(settings, ["all"])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.http_port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.05)
    pool = await db.create_pool(settings.database_url, 2)
    try:
        # the tests declare their trainers themselves (tests/services/training/conftest.py)
        tokens = {role: token for _, role, token in await load_demo(pool, trainers=False)}
    finally:
        await pool.close()
    try:
        yield Running(settings.public_url, settings, tokens, app)
    finally:
        server.should_exit = True
        await _bounded("the system's stop (HTTP server and its parts)", serving)


@pytest.fixture
async def http(system: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system.base_url, timeout=20) as client:
        yield client


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return SPANS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
