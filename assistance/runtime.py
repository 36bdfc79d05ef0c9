"""What a process holds open once (the pool, the bus, the Temporal client), the background
work of its parts, each supervised: restarted with backoff when it stops or fails, the
outbox senders the composition gives the parts, and every part's personal data hooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from temporalio.client import Client

from assistance import db, failures, metrics
from assistance import temporal as temporal_client
from assistance.bus import Bus
from assistance.db import Migrations
from assistance.outbox import Sender
from assistance.personal_data import PersonalData
from assistance.settings import Settings

log = logging.getLogger(__name__)

# An outbox sender the composition gives the parts, by outbox kind, built for a runtime once
# it is open: what a part's relay sends to a target it does not import (intake's relay starts
# and signals the dossiers' workflows with the senders of workflows/senders.py).
SenderFactory = Callable[["Runtime"], Sender]


async def supervise(
    name: str, start: Callable[[], Awaitable[Any]], stopping: Callable[[], bool] = lambda: False
) -> None:
    """Keep a background part running: restart it with backoff when it stops or fails, until
    the process stops (`stopping()`): then a part that returns is done."""
    delay = 0.5
    while True:
        try:
            await start()
            if stopping():
                return
            log.warning("%s stopped; restarting", name)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - logged and restarted, never fatal to the process
            if stopping():
                log.warning("%s failed while stopping", name, exc_info=True)
                return
            log.exception("%s failed; restarting in %.1fs", name, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)


class Runtime:
    """What a process holds open once: the pool, the bus, the Temporal client.

    Stopping (`close`, deploy/README.md "Stopping"): NATS consumers stop pulling and finish
    the batch they hold, outbox relays finish theirs, the Temporal worker drains its tasks
    (hooks given to `on_stop`); what does neither is cancelled at once. All of it is bounded
    by `SHUTDOWN_GRACE_SECONDS`, after which what is left is cancelled, and so is closing the
    pool: asyncpg's `close()` waits for every connection to come back, forever.
    """

    def __init__(
        self,
        settings: Settings,
        schemas: Iterable[Migrations] = (),
        name: str = "assistance",
        senders: Mapping[str, SenderFactory] | None = None,
        personal_data: Sequence[PersonalData] = (),
    ) -> None:
        self.settings = settings
        self.schemas = list(schemas)
        self.name = name
        self.senders = dict(senders or {})
        # every part's hooks, not only this process's: the RGPD export and erasure reach the
        # whole database (assistance/personal_data.py)
        self.personal_data = list(personal_data)
        self.calendar = settings.calendar()
        self.pool: Any = None
        self.snapshot = metrics.SNAPSHOT
        self.snapshot.max_age = settings.metrics_cache_seconds
        self._readers: list[metrics.Reader] = []
        self.bus = Bus(
            settings.nats_url,
            name=name,
            replicas=settings.nats_replicas,
            policy=failures.policy_from(settings),
        )
        self.temporal: Client | None = None
        self.tasks: list[asyncio.Task[None]] = []
        # when the stop began (loop time); /readyz answers 503 from then on
        self.stopping_since: float | None = None
        self._stop_hooks: list[Callable[[], Awaitable[Any]]] = []
        self._draining: set[asyncio.Task[Any]] = set()

    @property
    def stopping(self) -> bool:
        return self.stopping_since is not None

    def begin_stop(self) -> None:
        """The stop has begun: /readyz says so (safe from a signal handler; idempotent)."""
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()

    def on_stop(self, hook: Callable[[], Awaitable[Any]]) -> None:
        """Called by the background part running now: at the stop, `hook()` makes it drain
        and return (e.g. the Temporal worker's `shutdown`); it is waited for, within the
        grace, instead of being cancelled."""
        self._stop_hooks.append(hook)
        task = asyncio.current_task()
        if task is not None:
            self._draining.add(task)

    def sender(self, kind: str) -> Sender:
        """The sender of outbox rows of this kind that the composition gives this process."""
        if kind not in self.senders:
            raise LookupError(f"no sender given for outbox kind {kind!r}")
        return self.senders[kind](self)

    async def open(self) -> None:
        await db.migrate(self.settings.database_url, self.schemas)
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

    def observe(self, reader: metrics.Reader) -> None:
        """Add a reader of this process's observed series (assistance/metrics.py); pushed by
        OTLP too, when configured, so then read every `METRICS_CACHE_SECONDS` in background."""
        self._readers.append(reader)
        self.snapshot.add(reader)
        if self.settings.otel_exporter_otlp_endpoint and len(self._readers) == 1:
            self.background("metrics readings", self._read_metrics)

    async def _read_metrics(self) -> None:
        while True:
            await self.snapshot.refresh()
            await asyncio.sleep(self.settings.metrics_cache_seconds)

    def background(self, name: str, start: Callable[[], Awaitable[Any]]) -> None:
        task = asyncio.create_task(supervise(name, start, lambda: self.stopping), name=name)
        self.tasks.append(task)

    async def close(self, grace: float | None = None) -> None:
        """Stop within `grace` seconds; by default `SHUTDOWN_GRACE_SECONDS` after the notice
        that followed the signal (or from now, without one). Never more."""
        settings = self.settings
        if grace is not None:
            budget = grace
        elif self.stopping_since is not None:  # a signal: the bound runs from it
            end = self.stopping_since + settings.shutdown_notice_seconds
            budget = _left(end + settings.shutdown_grace_seconds)
        else:
            budget = settings.shutdown_grace_seconds
        deadline = time.monotonic() + budget
        self.begin_stop()
        for reader in self._readers:
            self.snapshot.remove(reader)
        self._readers.clear()
        self.bus.stop_pulling()
        hooks = [asyncio.create_task(_quietly(hook())) for hook in self._stop_hooks]
        draining = [t for t in self.tasks if t in self._draining or t in self.bus.draining]
        for task in self.tasks:
            if task not in draining:
                task.cancel()
        waited = [*draining, *hooks]
        if waited:
            _, late = await asyncio.wait(waited, timeout=budget)
            for task in late:
                log.warning("%s still running after %.0f s; cancelled", task.get_name(), budget)
                task.cancel()
        # every later phase within the same bound (a task slow to end its cancellation, NATS
        # slow to flush): each is left, with a warning, when the bound is reached
        ending = [*self.tasks, *hooks]
        if ending:
            _, stuck = await asyncio.wait(ending, timeout=_left(deadline))
            for task in stuck:
                log.warning("%s did not end once cancelled; left behind", task.get_name())
        for task in ending:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: a failure while stopping is not worth a traceback
        try:
            await asyncio.wait_for(self.bus.close(), _left(deadline))
        except TimeoutError:
            log.warning("NATS connection not closed within the stop bound; left behind")
        if self.pool is not None:
            await close_pool(self.pool, _left(deadline))


STOP_FLOOR_S = 0.2  # what a phase still gets once the bound is reached: a moment to end


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), STOP_FLOOR_S)


async def close_pool(pool: Any, within: float) -> None:
    """`pool.close()` within `within` seconds, else `pool.terminate()` with a warning naming
    how many connections were still held (asyncpg's close waits for each, forever)."""
    closing = asyncio.ensure_future(pool.close())
    done, _ = await asyncio.wait([closing], timeout=within)
    if not done:
        held = pool.get_size() - pool.get_idle_size()
        log.warning(
            "PostgreSQL pool not closed within %.1f s: %d connection(s) still held; terminated",
            within,
            held,
        )
        closing.cancel()  # asyncpg terminates the pool when its close() is cancelled
        pool.terminate()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await closing


async def _quietly(done: Awaitable[Any]) -> None:
    try:
        await done
    except Exception:  # noqa: BLE001 - a stop hook's failure must not stop the others
        log.warning("a stop hook failed", exc_info=True)
