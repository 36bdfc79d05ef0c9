"""Fault tolerance (issue 11, item 7): rien de perdu, rien d'oublié, nothing done twice.

A few dozen dossiers go through deposit → take → diagnose (usage) → respond → close while the
worker, the services process, NATS, Temporal and PostgreSQL are SIGKILLed in turn (each kill
meets a fresh wave of dossiers in flight, and the earlier waves' later steps); the
supervisor that `make run` uses (deploy/local/supervisor.py) brings each back. Then every 201 is
accounted for: one dossier in the read model, one workflow, closed, no duplicated timeline
entry, one acknowledgement, one response and one closure mail at the SMTP server, nothing
parked in bus.parked, every outgoing mail row `sent`.

Clients behave as they should: every write carries an Idempotency-Key and is retried with the
same key after a 5xx, a timeout or a lost connection (deposits: intake's key; commands: the
Temporal update id derived from it, services/dossier/api.py).

Everything here is real and separate: its own Temporal, NATS and PostgreSQL (persistent, so a
restart keeps their state), the services and the worker as child processes
(`assistance run --target …`), the stack's mail catcher as the SMTP server.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.client import Client

from assistance import db
from assistance.directory import Role
from composition.app import load_demo, migrate
from deploy.local.stack import LocalStack, StackConfig, free_port
from deploy.local.supervisor import Child, Supervisor
from tests.helpers import auth, deposit_body

DOSSIERS = 24  # in 6 waves of 4: one before each of the 5 kills, one after
KILL_AFTER_S = 1.5  # into a wave: its dossiers are being deposited and opened
MAIL_LEASE_S = 15  # a mail whose sender was killed mid-send goes again after this
REQUEST_TIMEOUT_S = 20.0
LIVENESS_S = 240.0  # bounds on waits for things to happen at all, never speed checks
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


# --- a client that retries the right way -------------------------------------------------------


async def write(
    http: httpx.AsyncClient, path: str, token: str | None, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST with an Idempotency-Key, retried with the same key after a 5xx, a timeout or a
    lost connection, and while the answer says to come back (202: the command's outcome is
    pending; 409 `idempotency_in_flight`: the first attempt still runs); another 4xx is an
    answer (and fails the test)."""
    key = str(uuid.uuid4())
    headers = {"Idempotency-Key": key, **(auth(token) if token else {})}
    deadline = time.monotonic() + LIVENESS_S
    last = ""
    while time.monotonic() < deadline:
        try:
            r = await http.post(path, json=body or {}, headers=headers, timeout=REQUEST_TIMEOUT_S)
        except httpx.TransportError as error:  # refused, reset, timed out
            last = repr(error)
        else:
            if r.status_code < 500 and not _come_back(r):
                assert r.status_code in (200, 201), f"{path}: {r.status_code} {r.text}"
                return r.json()  # type: ignore[no-any-return]
            last = f"{r.status_code} {r.text[:200]}"
        await asyncio.sleep(0.5 + random.random())
    raise AssertionError(f"{path}: no answer within {LIVENESS_S} s (last: {last})")


def _come_back(r: httpx.Response) -> bool:
    if r.status_code == 202:
        return True
    return r.status_code == 409 and r.json()["error"]["code"] == "idempotency_in_flight"


async def until(probe: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Poll `probe` (errors count as "not yet") until it returns something truthy."""
    deadline = time.monotonic() + LIVENESS_S
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await probe()
        except (httpx.HTTPError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what}: still not true after {LIVENESS_S} s (last: {last!r})")


async def lifecycle(http: httpx.AsyncClient, tokens: dict[Role, str], n: int) -> dict[str, Any]:
    """One customer's request, followed by one technician to its closure."""
    tech = tokens[Role.technician]
    opened = await write(
        http, "/api/v1/requests", None, deposit_body(subject=f"Export FEC bloqué n°{n}")
    )
    base = f"/api/v1/dossiers/{opened['id']}"

    async def readable() -> bool:
        r = await http.get(base, headers=auth(tech), timeout=REQUEST_TIMEOUT_S)
        return r.status_code == 200

    await until(readable, f"dossier {opened['reference']} readable")
    await write(http, f"{base}/take", tech)
    await write(
        http,
        f"{base}/diagnosis",
        tech,
        {"kind": "usage", "context": "Clôture mensuelle", "need": "Exporter le FEC"},
    )
    await write(http, f"{base}/responses", tech, {"text": f"Cochez « à-nouveaux » ({n})."})
    await write(http, f"{base}/close", tech, {"resolution": f"Paramètre d'export corrigé ({n})."})
    return opened


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

    ids = {uuid.UUID(d["id"]) for d in accepted}
    references = {d["reference"] for d in accepted}
    assert len(ids) == len(references) == DOSSIERS

    # every 201 became one dossier, one workflow, closed, with no timeline entry twice
    pool = await db.create_pool(system.database_url, 2)
    try:

        async def all_closed() -> bool:
            rows = await pool.fetch("SELECT id, status FROM dossier.dossiers")
            return {r["id"] for r in rows} == ids and {r["status"] for r in rows} == {"closed"}

        await until(all_closed, "every dossier closed in the read model")
        assert await pool.fetchval("SELECT count(*) FROM intake.requests") == DOSSIERS
        twice = await pool.fetch(
            """SELECT dossier_id, kind, text, count(*) FROM dossier.timeline
               GROUP BY dossier_id, kind, text HAVING count(*) > 1"""
        )
        assert twice == []
        kinds = Counter(r["kind"] for r in await pool.fetch("SELECT kind FROM dossier.timeline"))
        for kind in ("received", "opened", "closed"):
            assert kinds[kind] == DOSSIERS, kinds

        # one acknowledgement, one response and one closure per dossier, each mail once
        def to_customers() -> list[Any]:
            return [
                m.message()
                for m in system.stack.mail.messages
                if "claire.martin@dupont-sa.fr" in m.rcpt_tos
            ]

        async def every_mail_arrived() -> bool:
            return len(to_customers()) >= 3 * DOSSIERS

        await until(every_mail_arrived, "three mails per dossier")
        await asyncio.sleep(2)  # a duplicate would have arrived by now
        mails = to_customers()
        per_id = Counter(str(m["Message-ID"]) for m in mails)
        assert [mid for mid, n in per_id.items() if n > 1] == []
        per_dossier = Counter(
            next(ref for ref in references if f"[{ref}]" in str(m["Subject"])) for m in mails
        )
        assert set(per_dossier.values()) == {3}, per_dossier
        templates = Counter(
            r["template"]
            for r in await pool.fetch(
                "SELECT template FROM dossier.outbound_mail WHERE state = 'sent'"
            )
        )
        assert {t: templates[t] for t in ("acknowledgement", "response", "closure")} == {
            "acknowledgement": DOSSIERS,
            "response": DOSSIERS,
            "closure": DOSSIERS,
        }
        assert (
            await pool.fetchval("SELECT count(*) FROM dossier.outbound_mail WHERE state <> 'sent'")
            == 0
        )

        # nothing parked
        assert await pool.fetch("SELECT source, name, subject, error FROM bus.parked") == []
        assert await pool.fetchval("SELECT count(*) FROM bus.outbox WHERE status = 'parked'") == 0
    finally:
        await pool.close()

    temporal = await Client.connect(system.stack.endpoints.temporal_address)
    workflows = [w async for w in temporal.list_workflows("WorkflowType = 'DossierWorkflow'")]
    assert sorted(w.id for w in workflows) == sorted(str(i) for i in ids)
    said = "\n  ".join(system.lines)
    took = time.monotonic() - started
    print(f"\nfault test: {DOSSIERS} dossiers, {len(KILLED_IN_TURN)} kills, {took:.0f} s")
    print(f"  {said}")
