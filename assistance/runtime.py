"""What a process holds open once (the pool, the bus, the Temporal client) and the background
work of its parts, each supervised: restarted with backoff when it stops or fails."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from temporalio.client import Client

from assistance import db, failures, metrics
from assistance import temporal as temporal_client
from assistance.bus import Bus
from assistance.db import Migrations
from assistance.settings import Settings

log = logging.getLogger(__name__)


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


class Runtime:
    """What a process holds open once: the pool, the bus, the Temporal client."""

    def __init__(
        self, settings: Settings, schemas: Iterable[Migrations] = (), name: str = "assistance"
    ) -> None:
        self.settings = settings
        self.schemas = list(schemas)
        self.name = name
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
        self.tasks.append(asyncio.create_task(supervise(name, start), name=name))

    async def close(self) -> None:
        for reader in self._readers:
            self.snapshot.remove(reader)
        self._readers.clear()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.bus.close()
        if self.pool is not None:
            await self.pool.close()
