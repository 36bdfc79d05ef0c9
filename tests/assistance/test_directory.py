"""Identity from day one: tokens stored hashed, one role per user, the CLI that makes them."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from assistance import db, directory
from assistance.directory import Role
from composition import cli
from deploy.local.stack import Endpoints, create_database


@pytest.fixture
async def database(endpoints: Endpoints) -> str:
    url = await create_database(endpoints.database_url, f"dir_{uuid.uuid4().hex[:10]}")
    await db.migrate(url)
    return url


async def test_tokens_are_hashed_and_revocable(database: str) -> None:
    pool = await db.create_pool(database, 2)
    try:
        org = await directory.create_organisation(pool, "Dupont SA", ["dupont-sa.fr"])
        user = await directory.create_user(
            pool, "Claire.Martin@dupont-sa.fr", "Claire Martin", Role.customer, org
        )
        token = await directory.issue_token(pool, user, "test")
        stored = await pool.fetch("SELECT token_hash::text AS h FROM directory.tokens")
        assert all(token not in r["h"] for r in stored)
        who = await directory.authenticate(pool, token)
        assert who is not None
        assert (who.role, who.organisation_id, who.email) == (
            Role.customer,
            org,
            "claire.martin@dupont-sa.fr",
        )
        assert not who.is_staff
        assert await directory.organisation_for_email(pool, "paul@dupont-sa.fr") == org
        assert await directory.organisation_for_email(pool, "x@ailleurs.example") is None
        assert await directory.revoke_token(pool, token) is True
        assert await directory.authenticate(pool, token) is None
        with pytest.raises(ValueError):
            await directory.create_user(pool, "x@y.fr", "Sans organisation", Role.customer)
    finally:
        await pool.close()


async def test_cli_creates_a_user_with_a_token(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database)
    args = [
        "user",
        "create",
        "--email",
        "nina@manao.eu",
        "--name",
        "Nina",
        "--role",
        "developer",
        "--token",
    ]
    await asyncio.to_thread(cli.main, args)
    out = capsys.readouterr().out
    token = out.split("token: ")[1].strip()
    pool = await db.create_pool(database, 2)
    try:
        who = await directory.authenticate(pool, token)
        assert who is not None and who.role is Role.developer and who.name == "Nina"
    finally:
        await pool.close()
