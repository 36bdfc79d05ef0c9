"""Fault tolerance (issue 11, item 7): rien de perdu, rien d'oublié, nothing done twice.

A few dozen dossiers go through deposit → take → diagnose (usage) → respond → close while the
worker, the services process, NATS, Temporal and PostgreSQL are SIGKILLed in turn (each kill
meets a fresh wave of dossiers in flight, and the earlier waves' later steps); the
supervisor that `make run` uses (deploy/local/supervisor.py) brings each back. Then every 201 is
accounted for: one dossier in the read model, one workflow, closed, no duplicated timeline
entry, one acknowledgement, one response and one closure mail at the SMTP server, nothing
parked in bus.parked, every outgoing mail row `sent`.

Clients behave as they should, and the accounting is shared with the cluster test
(tests/lifecycle.py): every write carries an Idempotency-Key and is retried with the same key
after a 5xx, a timeout or a lost connection.

Everything here is real and separate: its own Temporal, NATS and PostgreSQL (persistent, so a
restart keeps their state), the services and the worker as child processes
(`assistance run --target …`), the stack's mail catcher as the SMTP server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from assistance import db
from assistance.directory import Role
from composition.app import load_demo, migrate
from deploy.local.stack import LocalStack, StackConfig, free_port
from deploy.local.supervisor import Child, Supervisor
from tests.lifecycle import account_for, lifecycle, until

DOSSIERS = 24  # in 6 waves of 4: one before each of the 5 kills, one after
KILL_AFTER_S = 1.5  # into a wave: its dossiers are being deposited and opened
MAIL_LEASE_S = 15  # a mail whose sender was killed mid-send goes again after this
KILLED_IN_TURN = ("worker", "services", "NATS", "Temporal", "PostgreSQL")
SERVICES = ("intake", "dossier")


@dataclass
class System:
    stack: LocalStack
    database_url: str
    base_url: str
    tokens: dict[Role, str]
    parts: dict[str, Child]
    supervisor: Supervisor
    lines: list[str] = field(default_factory=list)

    def pid(self, name: str) -> int | None:
        if name in self.parts:
            return self.parts[name].pid()
        return self.stack.pid({"NATS": "nats", "Temporal": "temporal"}.get(name, "postgres"))


@pytest.fixture(scope="module")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    data = tmp_path_factory.mktemp("fault")
    stack = LocalStack(StackConfig(data_dir=data, persistent=True, ui=False), lambda _: None)
    ends = await stack.start()
    parts: dict[str, Child] = {}
    try:
        await migrate(ends.database_url)
        pool = await db.create_pool(ends.database_url, 2)
        try:
            tokens = {role: token for _, role, token in await load_demo(pool)}
        finally:
            await pool.close()
        env = {
            **os.environ,
            "DATABASE_URL": ends.database_url,
            "DATABASE_POOL_SIZE": "10",
            "TEMPORAL_ADDRESS": ends.temporal_address,
            "TEMPORAL_TASK_QUEUE": f"dossiers-{uuid.uuid4().hex[:8]}",
            "NATS_URL": ends.nats_url,
            "SMTP_HOST": ends.smtp_host,
            "SMTP_PORT": str(ends.smtp_port),
            "MAIL_SENDING_LEASE_SECONDS": str(MAIL_LEASE_S),
            "MAIL_LISTEN_PORT": "0",
            "MAIL_LMTP_PORT": "0",
            "RELAY_POLL_SECONDS": "0.5",
            "LOG_LEVEL": "WARNING",
        }
        port = free_port()
        env["PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        parts = {
            "services": Child("services", list(SERVICES), data / "services.log", env, port),
            "worker": Child("worker", ["worker"], data / "worker.log", env, free_port()),
        }
        await asyncio.gather(*(part.start() for part in parts.values()))
        lines: list[str] = []
        supervisor = Supervisor(say=lines.append)
        supervisor.watch("Temporal", stack.start_temporal, lambda: stack.running("temporal"))
        supervisor.watch("NATS", stack.start_nats, lambda: stack.running("nats"))
        supervisor.watch("PostgreSQL", stack.start_postgres, lambda: stack.running("postgres"))
        for part in parts.values():
            supervisor.watch(part.name, part.start, part.alive)
        async with supervisor:
            yield System(
                stack, ends.database_url, f"http://127.0.0.1:{port}", tokens, parts, supervisor,
                lines,
            )  # fmt: skip
    finally:
        for part in parts.values():
            await part.stop()
        await stack.stop()


async def chaos(system: System, wave: Callable[[], None]) -> list[str]:
    """Dossiers come in waves; a part is SIGKILLed while each wave is in flight (the first
    one or two steps of its dossiers, the later steps of the earlier waves), then waited back
    before the next wave, so every kill meets work in progress."""
    killed = []
    for name in KILLED_IN_TURN:
        wave()
        await asyncio.sleep(KILL_AFTER_S)
        restarts = system.supervisor.restarts(name)
        pid = system.pid(name)
        assert pid is not None, f"{name} is not running"
        os.kill(pid, signal.SIGKILL)
        killed.append(name)

        async def back(name: str = name, restarts: int = restarts) -> bool:
            return system.supervisor.restarts(name) > restarts

        await until(back, f"{name} restarted")
    wave()  # the last one meets parts that have all been killed once
    return killed


async def test_every_dossier_accounted_for_after_killing_each_part(system: System) -> None:
    started = time.monotonic()
    flows: list[asyncio.Task[dict[str, Any]]] = []
    per_wave = DOSSIERS // (len(KILLED_IN_TURN) + 1)

    async with httpx.AsyncClient(base_url=system.base_url, trust_env=False) as http:

        def wave() -> None:
            first = len(flows)
            for n in range(first, first + per_wave):
                flows.append(asyncio.create_task(lifecycle(http, system.tokens, n)))

        killed = await chaos(system, wave)
        accepted = await asyncio.gather(*flows)
    assert killed == list(KILLED_IN_TURN)
    assert all(system.supervisor.restarts(name) >= 1 for name in KILLED_IN_TURN), system.lines
    assert len(accepted) == DOSSIERS

    await account_for(
        accepted,
        database_url=system.database_url,
        temporal_address=system.stack.endpoints.temporal_address,
        mails=lambda: system.stack.mail.messages,
    )
    said = "\n  ".join(system.lines)
    took = time.monotonic() - started
    print(f"\nfault test: {DOSSIERS} dossiers, {len(KILLED_IN_TURN)} kills, {took:.0f} s")
    print(f"  {said}")
