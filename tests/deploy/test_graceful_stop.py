"""A graceful stop on SIGTERM (issue 12, item 4), as in production: the real command
(`assistance run --target …`) against the real servers. A request in flight when the signal
comes completes; `/readyz` says 503 « arrêt en cours » from the signal on; new connections are
refused once the notice is over; the process exits 0 within its bound. And a process in
production mode refuses to start with the default signing key."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from assistance import db
from assistance.readiness import STOPPING
from composition.app import load_demo, migrate
from deploy.local.stack import Endpoints, _Nats, create_database, free_port
from tests.helpers import deposit_body, eventually

NOTICE_S = 2.0
GRACE_S = 10.0
# Once the bound is reached each phase still gets a moment to end (assistance/runtime.py,
# STOP_FLOOR_S): the process reports its stop by its own clock, from the signal to everything
# closed, which is what its bound is about
STOP_SLACK_S = 1.0
# The process must end on its own, whatever the machine's load: far less than a supervisor's
# kill (Kubernetes: 30 s after the notice), far more than the interpreter needs to exit
EXIT_BOUND_S = NOTICE_S + GRACE_S + 30
COMMAND = [str(Path(sys.executable).parent / "assistance"), "run"]


@pytest.fixture(scope="module")
async def nats_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A NATS of its own: these processes use a database of their own, so their events (whose
    references start again at D-…-000001) must not reach the session's streams and projection."""
    server = _Nats(tmp_path_factory.mktemp("stop-nats"), persistent=False, port=free_port())
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


def _stopped_in(log: Path) -> float:
    """The stop's duration the process reported ("stopped in 3.1 s (bound 12.0 s)")."""
    found = re.search(r"stopped in ([\d.]+) s", log.read_text())
    assert found, log.read_text()
    return float(found[1])


def _env(endpoints: Endpoints, database_url: str, port: int, nats_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATABASE_POOL_SIZE": "4",
        "TEMPORAL_ADDRESS": endpoints.temporal_address,
        "TEMPORAL_TASK_QUEUE": f"dossiers-{uuid.uuid4().hex[:8]}",
        "NATS_URL": nats_url,
        "SMTP_HOST": endpoints.smtp_host,
        "SMTP_PORT": str(endpoints.smtp_port),
        "MAIL_LISTEN_PORT": "0",
        "HTTP_PORT": str(port),
        "SHUTDOWN_NOTICE_SECONDS": str(NOTICE_S),
        "SHUTDOWN_GRACE_SECONDS": str(GRACE_S),
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture
async def database_url(endpoints: Endpoints) -> str:
    url = await create_database(endpoints.database_url, f"stop_{uuid.uuid4().hex[:10]}")
    await migrate(url)
    pool = await db.create_pool(url, 2)
    try:
        await load_demo(pool)  # the softwares a deposit names
    finally:
        await pool.close()
    return url


@pytest.fixture
async def intake(
    endpoints: Endpoints, database_url: str, nats_url: str, tmp_path: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, Path]]:
    port = free_port()
    log = tmp_path / "intake.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *COMMAND, "--target", "intake",
            env=_env(endpoints, database_url, port, nats_url), stdout=out, stderr=out,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:

            async def ready() -> bool:
                if process.returncode is not None:
                    raise AssertionError(log.read_text())
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, timeout=60)
        yield process, base, log
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(
    intake: tuple[asyncio.subprocess.Process, str, Path],
) -> None:
    process, base, log = intake
    signalled = asyncio.Event()
    body = httpx.Response(200, json=deposit_body(subject="Arrêt pendant l'envoi")).content

    async def slowly() -> AsyncIterator[bytes]:
        """The body in pieces: the request is in flight from before the signal to after the
        notice, when the server no longer accepts connections."""
        yield body[:10]
        await signalled.wait()
        await asyncio.sleep(NOTICE_S + 1.5)
        yield body[10:]

    async with httpx.AsyncClient(base_url=base, timeout=GRACE_S + 20) as http:
        deposit = asyncio.create_task(
            http.post(
                "/api/v1/requests",
                content=slowly(),
                headers={"Content-Type": "application/json", "Content-Length": str(len(body))},
            )
        )
        await asyncio.sleep(0.5)  # the request's head and first bytes are in
        process.send_signal(signal.SIGTERM)
        began = time.monotonic()
        signalled.set()

        async with httpx.AsyncClient(base_url=base, timeout=5) as other:
            stopping = await other.get("/readyz")  # a new connection, during the notice
            alive = await other.get("/healthz")
        assert stopping.status_code == 503
        assert stopping.json() == {"status": "stopping", "message": STOPPING}
        assert "arrêt en cours" in stopping.json()["message"]
        assert alive.status_code == 200  # liveness: stopping is not dead

        await asyncio.sleep(NOTICE_S + 0.5 - (time.monotonic() - began))
        with pytest.raises(httpx.ConnectError):  # the notice is over: no new connection
            async with httpx.AsyncClient(base_url=base, timeout=2) as late:
                await late.get("/healthz")

        answer = await deposit
        assert answer.status_code == 201, answer.text
        assert answer.json()["id"]

    code = await asyncio.wait_for(process.wait(), EXIT_BOUND_S)
    assert code == 0, log.read_text()
    assert _stopped_in(log) <= NOTICE_S + GRACE_S + STOP_SLACK_S, log.read_text()
    assert "Traceback" not in log.read_text()


async def test_the_worker_drains_and_exits_0(
    endpoints: Endpoints, database_url: str, nats_url: str, tmp_path: Path
) -> None:
    """The Temporal worker process: SIGTERM, its pollers stop, it exits 0 within its bound."""
    port = free_port()
    log = tmp_path / "worker.log"
    env = {**_env(endpoints, database_url, port, nats_url), "SHUTDOWN_NOTICE_SECONDS": "0"}
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *COMMAND, "--target", "worker", env=env, stdout=out, stderr=out
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, timeout=60)
        await asyncio.sleep(1.0)  # its pollers are in their long polls
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), EXIT_BOUND_S)
        assert code == 0, log.read_text()
        assert _stopped_in(log) <= GRACE_S + STOP_SLACK_S, log.read_text()
        assert "Traceback" not in log.read_text()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_production_mode_refuses_the_default_signing_key(endpoints: Endpoints) -> None:
    env = {
        **os.environ,
        "ENVIRONMENT": "production",
        "DATABASE_URL": endpoints.database_url,
        "HTTP_PORT": str(free_port()),
    }
    env.pop("MAIL_SIGNING_KEY", None)
    process = await asyncio.create_subprocess_exec(
        *COMMAND, "--target", "intake", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0
    message = err.decode()
    assert "MAIL_SIGNING_KEY" in message
    assert "production" in message
    assert "valeur par défaut" in message and "default value" in message
