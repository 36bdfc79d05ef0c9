"""`/readyz` names every dependency with its state, probed by a real round trip (issue 11):
a frozen NATS shows down within seconds, and a process that sends commands to dossiers is not
ready while no worker polls the dossiers' task queue. Deposits are still accepted (R13)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from temporalio.client import Client
from temporalio.worker import Worker

from assistance.readiness import Readiness
from assistance.settings import Settings
from assistance.temporal import data_converter
from composition.app import create_app
from composition.parts import choose
from deploy.local.stack import LocalStack, free_port
from tests.helpers import eventually
from workflows.dossier import DossierWorkflow


async def test_every_dependency_up(http: httpx.AsyncClient) -> None:
    async def ready() -> httpx.Response | None:
        # earlier tests stop and restart NATS and Temporal: the process reconnects by itself
        r = await http.get("/readyz")
        return r if r.status_code == 200 else None

    r = await eventually(ready)
    assert r.json() == {
        "status": "ready",
        "dependencies": {"postgres": "up", "nats": "up", "temporal": "up"},
        "deposits": "accepted",
        "commands": "accepted",
    }


async def test_a_frozen_nats_shows_down_within_seconds(
    http: httpx.AsyncClient, stack: LocalStack
) -> None:
    pid = stack.pid("nats")
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # the TCP connection stays open; only a round trip tells
    try:
        began = time.monotonic()
        r = await http.get("/readyz")
        elapsed = time.monotonic() - began
    finally:
        os.kill(pid, signal.SIGCONT)
    assert r.status_code == 503
    assert r.json()["dependencies"] == {"postgres": "up", "nats": "down", "temporal": "up"}
    assert r.json()["deposits"] == "accepted"
    assert r.json()["commands"] == "unavailable"
    assert elapsed < 5.0  # a bound of the probe itself (2 s), not a speed check


@pytest.fixture
async def commands_only(settings: Settings, system) -> AsyncIterator[tuple[str, str]]:
    """The dossier service alone (it sends commands), on a task queue of its own."""
    queue = f"dossiers-{uuid.uuid4().hex[:8]}"
    port = free_port()
    alone = settings.model_copy(update={"temporal_task_queue": queue, "http_port": port})
    server = uvicorn.Server(
        uvicorn.Config(create_app(alone, ["dossier"]), port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", queue
    finally:
        server.should_exit = True
        await serving


async def test_commands_need_a_worker_on_the_task_queue(
    commands_only: tuple[str, str], settings: Settings
) -> None:
    base, queue = commands_only
    async with httpx.AsyncClient(base_url=base, timeout=20) as client:
        deadline = time.monotonic() + 30  # a fresh process connects to NATS in the background
        while (r := await client.get("/readyz")).json()["dependencies"]["nats"] != "up":
            assert time.monotonic() < deadline, r.text
            await asyncio.sleep(0.2)
        assert r.status_code == 503
        assert r.json()["dependencies"] == {
            "postgres": "up",
            "nats": "up",
            "temporal": "up",
            "worker": "down",
        }
        assert r.json()["commands"] == "unavailable"
        assert "deposits" not in r.json()  # this process takes no deposits

        temporal = await Client.connect(settings.temporal_address, data_converter=data_converter)
        async with Worker(temporal, task_queue=queue, workflows=[DossierWorkflow]):
            deadline = time.monotonic() + 30
            while (r := await client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, r.text
                await asyncio.sleep(0.2)
        assert r.json()["dependencies"]["worker"] == "up"
        assert r.json()["commands"] == "accepted"


def test_deposits_alone_need_only_postgres() -> None:
    """An intake-only process stays ready (200, "degraded") with NATS or Temporal down: the
    outbox carries its deposits on later (R13); command parts and the worker need them all."""
    every = {"postgres": "up", "nats": "down", "temporal": "down"}
    assert Readiness(None, choose(["intake"])).required(every) == ["postgres"]
    assert Readiness(None, choose(["training", "bugs"])).required(every) == ["postgres"]
    assert Readiness(None, choose(["intake", "dossier"])).required(every) == list(every)
    assert Readiness(None, choose(["worker"])).required(every) == list(every)
    assert Readiness(None, choose(["dossier"])).needs_worker
    assert not Readiness(None, choose(["dossier", "worker"])).needs_worker
