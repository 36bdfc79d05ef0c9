"""The outbox relay: gets every committed request to NATS and Temporal, retrying (R13).

Woken by LISTEN/NOTIFY on commit, and polls as a safety net. Each hop is idempotent:
`Nats-Msg-Id` on publish, workflow id = dossier id on start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

import asyncpg
from opentelemetry import context as otel_context
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from assistance import telemetry
from assistance.bus import Bus
from assistance.events import Event
from services.intake import repo

log = logging.getLogger(__name__)

BATCH = 200
MAX_BACKOFF_S = 10.0


def backoff(attempts: int) -> float:
    return min(0.5 * 2**attempts, MAX_BACKOFF_S)


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: Bus,
        temporal: Client,
        task_queue: str,
        poll_seconds: float = 1.0,
    ) -> None:
        self.pool = pool
        self.bus = bus
        self.temporal = temporal
        self.task_queue = task_queue
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    async def run(self) -> None:
        async with self.pool.acquire() as listener:
            await listener.add_listener("intake_outbox", self._on_notify)
            try:
                while True:
                    if await self.drain():
                        continue
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            finally:
                await listener.remove_listener("intake_outbox", self._on_notify)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def drain(self) -> int:
        """Send one batch of due rows; returns how many were sent."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await repo.pending_outbox(conn, BATCH)
            if not rows:
                return 0
            results = await asyncio.gather(*(self._send(r) for r in rows))
            done = [r["id"] for r, err in zip(rows, results, strict=True) if err is None]
            await repo.mark_done(conn, done)
            for row, err in zip(rows, results, strict=True):
                if err is not None:
                    await repo.mark_failed(conn, row["id"], err, backoff(row["attempts"]))
            return len(done)

    async def _send(self, row: asyncpg.Record) -> str | None:
        token = otel_context.attach(telemetry.extract(row["trace"]))
        try:
            if row["kind"] == "publish":
                await self.bus.publish(Event.model_validate(row["payload"]))
            else:
                await self._start_dossier(row["payload"])
            return None
        except Exception as exc:  # noqa: BLE001 - retried later with backoff
            log.info("outbox row %s not sent yet: %r", row["id"], exc)
            return repr(exc) or type(exc).__name__
        finally:
            otel_context.detach(token)

    async def _start_dossier(self, opening: dict[str, Any]) -> None:
        # Already started and since finished: nothing to do.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self.temporal.start_workflow(
                "DossierWorkflow",
                opening,
                id=opening["dossier_id"],
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                rpc_timeout=timedelta(seconds=5),
            )
