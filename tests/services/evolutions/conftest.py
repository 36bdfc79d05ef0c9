"""Fixtures of the evolutions tests: a fresh software per test, its product manager, NATS."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import nats
import pytest
from nats.aio.client import Client as NATS

from assistance import db, directory
from assistance.directory import Role
from assistance.settings import Settings
from services.evolutions import repo
from tests.services.evolutions.support import PM_EMAIL


@pytest.fixture(scope="session")
async def pool(system, settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    connections = await db.create_pool(settings.database_url, 4)
    try:
        yield connections
    finally:
        await connections.close()


@pytest.fixture(scope="session")
async def nc(system, settings: Settings) -> AsyncIterator[NATS]:
    client = await nats.connect(settings.nats_url)
    try:
        yield client
    finally:
        await client.drain()


@pytest.fixture
async def software(pool: asyncpg.Pool) -> str:
    """A software of its own for each test, owned by the demo product manager."""
    code = f"logiciel-{uuid.uuid4().hex[:8]}"
    await directory.add_software(pool, code, f"Logiciel {code[-8:].upper()}")
    pm = await pool.fetchval("SELECT id FROM directory.users WHERE email = $1", PM_EMAIL)
    await repo.assign_product_manager(pool, code, pm)
    return code


@pytest.fixture(scope="session")
async def other_pm_token(pool: asyncpg.Pool) -> str:
    """A product manager who owns no software of these tests."""
    user = await directory.create_user(
        pool, "autre.produit@manao.eu", "Olivier Autre-Produit", Role.product_manager
    )
    return await directory.issue_token(pool, user, "test")


@pytest.fixture(scope="session")
async def dupont(pool: asyncpg.Pool) -> uuid.UUID:
    org = await directory.organisation_for_email(pool, "claire.martin@dupont-sa.fr")
    assert org is not None
    return org
