"""Training test fixtures: a pool on the test database, fresh softwares and trainers, and the
hand-over over real NATS. Every test gets its own software, so its trainers are its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from assistance import db, directory
from assistance.directory import Role
from tests.helpers import auth
from tests.services.training.support import NewTrainer, TrainerUser


@pytest.fixture(scope="session")
async def pool(system: Any) -> AsyncIterator[asyncpg.Pool]:
    created = await db.create_pool(system.settings.database_url, 25)
    yield created
    await created.close()


@pytest.fixture
async def software(pool: asyncpg.Pool) -> str:
    code = f"t-{uuid.uuid4().hex[:8]}"
    await directory.add_software(pool, code, f"Logiciel {code}")
    return code


@pytest.fixture
def new_trainer(pool: asyncpg.Pool, http: httpx.AsyncClient) -> NewTrainer:
    """A directory user with the trainer role who declared the softwares they teach."""

    async def make(*softwares: str, name: str = "Fanny Formatrice") -> TrainerUser:
        email = f"formateur-{uuid.uuid4().hex[:8]}@manao.eu"
        user = await directory.create_user(pool, email, name, Role.trainer)
        token = await directory.issue_token(pool, user, "test")
        r = await http.put(
            "/api/v1/training/trainers/me",
            json={"softwares": list(softwares)},
            headers=auth(token),
        )
        assert r.status_code == 200, r.text
        return TrainerUser(user, name, email, token)

    return make
