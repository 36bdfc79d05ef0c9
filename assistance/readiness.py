"""`/readyz`: every dependency this process needs, each probed with a real round trip.

- PostgreSQL: `SELECT 1` through the pool.
- NATS: a JetStream request and its answer, not the client's idea of its socket: a frozen
  server (SIGSTOP) keeps the TCP connection open and only a round trip shows it is gone.
- Temporal: the frontend's health check.
- The Temporal worker, when this process sends commands to dossiers (the dossier API, the site):
  a poller on the dossiers' task queue seen recently. Without one, every command would hang.

Each check is bounded (PROBE_S); they run together, so the answer comes within a few seconds
whatever is frozen. The answer is 503 when something the process's requests need is down: all
of them for a process that sends commands (or runs the worker); PostgreSQL only for one that
takes deposits or the other services' writes (R13: the outbox carries them on later), which
then answers 200 "degraded". The body names every dependency with its state and says whether
deposits are accepted.

Once the process is stopping (SIGTERM, assistance/shutdown.py), the answer is 503 « arrêt en
cours » at once, without probing: the load balancer stops sending while requests in flight end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any

from fastapi.responses import JSONResponse
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from assistance.parts import Part

PROBE_S = 2.0
STOPPING = "arrêt en cours / shutting down"
# A live worker long-polls the queue without a break; Temporal records each poll when it
# starts, and an idle poll lasts up to about a minute. A poller older than this is gone.
WORKER_SEEN_S = 75.0


class Readiness:
    """The probes of one process (its Runtime, and the parts it runs)."""

    def __init__(self, rt: Any, parts: Iterable[Part]) -> None:
        self.rt = rt
        chosen = list(parts)
        # what the parts declare (assistance/parts.py): commands need the worker, which
        # needs Temporal; deposits need PostgreSQL only
        self.commands = any(part.sends_commands for part in chosen)
        self.worker = any(part.runs_worker for part in chosen)
        self.deposits = any(part.takes_deposits for part in chosen)
        self.temporal = any(part.uses_temporal for part in chosen)

    @property
    def needs_worker(self) -> bool:
        return self.commands and not self.worker

    @property
    def needs_temporal(self) -> bool:
        return self.temporal

    async def report(self) -> tuple[int, dict[str, Any]]:
        if getattr(self.rt, "stopping", False):
            return 503, {"status": "stopping", "message": STOPPING}
        probes: dict[str, Callable[[], Awaitable[Any]]] = {
            "postgres": self._postgres,
            "nats": self._nats,
        }
        if self.needs_temporal:
            probes["temporal"] = self._temporal
        if self.needs_worker:
            probes["worker"] = self._worker
        states = await asyncio.gather(*(_probe(p) for p in probes.values()))
        dependencies = dict(zip(probes, states, strict=True))
        every = all(state == "up" for state in dependencies.values())
        ready = all(dependencies[name] == "up" for name in self.required(dependencies))
        body: dict[str, Any] = {
            "status": "ready" if every else ("degraded" if ready else "not_ready"),
            "dependencies": dependencies,
        }
        if self.deposits:
            # R13: a deposit only needs PostgreSQL; the outbox gets it further later
            body["deposits"] = "accepted" if dependencies["postgres"] == "up" else "refused"
        if self.commands:
            body["commands"] = "accepted" if ready else "unavailable"
        return (200 if ready else 503), body

    def required(self, dependencies: dict[str, str]) -> list[str]:
        """What this process's requests cannot do without. Commands and the worker need them
        all; deposits and the other services' writes need PostgreSQL only (R13: the outbox
        carries them on), so a process serving only those stays in its load balancer."""
        if self.commands or self.worker:
            return list(dependencies)
        return ["postgres"]

    async def _postgres(self) -> None:
        await self.rt.pool.fetchval("SELECT 1")

    async def _nats(self) -> None:
        """A JetStream request and its answer. Not `flush()`: while the client reconnects
        its read loop is down and `flush()` returns at once, without any round trip."""
        nc = self.rt.bus.nc
        if nc is None or not nc.is_connected:
            raise ConnectionError("NATS not connected")
        await nc.request("$JS.API.INFO", b"", timeout=PROBE_S)
        if not nc.is_connected:
            raise ConnectionError("NATS connection lost meanwhile")

    async def _temporal(self) -> None:
        client = self.rt.temporal
        assert client is not None
        ok = await client.service_client.check_health(timeout=timedelta(seconds=PROBE_S))
        if not ok:
            raise ConnectionError("Temporal not serving")

    async def _worker(self) -> None:
        client = self.rt.temporal
        assert client is not None
        answer = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=self.rt.settings.temporal_task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            ),
            timeout=timedelta(seconds=PROBE_S),
        )
        now = time.time()
        if not any(now - p.last_access_time.ToSeconds() < WORKER_SEEN_S for p in answer.pollers):
            raise LookupError("no worker polls the dossiers' task queue")


async def _probe(check: Callable[[], Awaitable[Any]]) -> str:
    try:
        await asyncio.wait_for(check(), PROBE_S + 1.0)
        return "up"
    except Exception:  # noqa: BLE001 - reported, not raised
        return "down"


def response(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
