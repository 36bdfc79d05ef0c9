"""Fixtures of the bugs service's integration tests: a bus and a pool of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from assistance import db
from assistance.bus import Bus


@pytest.fixture(scope="session")
async def bus(system: Any) -> AsyncIterator[Bus]:
    connected = Bus(system.settings.nats_url, name="bugs-tests")
    await connected.connect(timeout=10)
    try:
        yield connected
    finally:
        await connected.close()


@pytest.fixture(scope="session")
async def pool(system: Any) -> AsyncIterator[asyncpg.Pool]:
    opened = await db.create_pool(system.settings.database_url, 2)
    try:
        yield opened
    finally:
        await opened.close()
