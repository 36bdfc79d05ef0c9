"""First run (issue 14, decision 0018): the banner's URLs answer, links follow the port, the
command line finds the `make run` database or refuses in French, demo tokens stay the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from assistance import db, demo
from assistance.directory import Role
from assistance.settings import Settings
from composition.cli import NO_DATABASE, STATE_FILE, with_dev_database
from deploy.local.stack import Endpoints, create_database


def test_public_url_follows_the_http_port() -> None:
    assert Settings(http_port=8123).public_url == "http://127.0.0.1:8123"
    assert Settings(http_host="0.0.0.0", http_port=80).public_url == "http://127.0.0.1:80"
    assert Settings(http_port=8123, public_url="https://aide.manao.eu").public_url == (
        "https://aide.manao.eu"
    )


def test_without_database_the_command_line_refuses_in_french(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as refused:
        with_dev_database(Settings(database_url="", data_dir=tmp_path))

    assert refused.value.code == NO_DATABASE
    assert NO_DATABASE.startswith("Aucune base de données : lancez d'abord `make run`")


def test_the_command_line_uses_the_make_run_database(tmp_path: Path) -> None:
    state = {"database_url": "postgresql://postgres@/postgres?host=/x", "nats_url": "nats://h:1"}
    (tmp_path / STATE_FILE).write_text(json.dumps(state))

    found = with_dev_database(Settings(database_url="", data_dir=tmp_path))

    assert (found.database_url, found.nats_url) == (state["database_url"], state["nats_url"])
    given = Settings(database_url="postgresql://elsewhere/db", data_dir=tmp_path)
    assert with_dev_database(given).database_url == "postgresql://elsewhere/db"


def _assistance(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DATA_DIR"] = str(data_dir)
    command = [str(Path(sys.executable).parent / "assistance"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


async def test_demo_tokens_and_trainer_from_the_command_line(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    url = await create_database(endpoints.database_url, f"t_{uuid.uuid4().hex[:12]}")
    (tmp_path / STATE_FILE).write_text(
        json.dumps({"database_url": url, "nats_url": endpoints.nats_url})
    )

    migrated = _assistance("migrate", data_dir=tmp_path)
    first = _assistance("demo", data_dir=tmp_path)
    second = _assistance("demo", data_dir=tmp_path)

    assert migrated.returncode == 0, migrated.stderr
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout  # the same tokens from one start to the next
    stored = json.loads((tmp_path / demo.TOKENS_FILE).read_text())
    assert sorted(stored) == sorted(email for email, _, _ in demo.USERS)
    assert all(token in first.stdout for token in stored.values())
    pool = await db.create_pool(url, 1)
    try:
        trainer = await pool.fetchrow(
            "SELECT t.softwares, t.active FROM training.trainers t"
            " JOIN directory.users u ON u.id = t.id WHERE u.email = 'formation@manao.eu'"
        )
        assert (sorted(trainer["softwares"]), trainer["active"]) == (
            ["manao-compta", "manao-paie"],
            True,
        )
        (tmp_path / demo.TOKENS_FILE).unlink()
        renewed = {email: token for email, _, token in await demo.load(pool, data_dir=tmp_path)}
        assert set(renewed.values()).isdisjoint(stored.values())
    finally:
        await pool.close()
    issued = _assistance("token", "issue", "--email", "tech@manao.eu", data_dir=tmp_path)
    assert issued.returncode == 0, issued.stderr
    assert issued.stdout.startswith("mna_")


def test_the_command_line_refuses_when_make_run_is_gone(tmp_path: Path) -> None:
    gone = {"database_url": f"postgresql://postgres@/postgres?host={tmp_path}", "nats_url": ""}
    (tmp_path / STATE_FILE).write_text(json.dumps(gone))

    refused = _assistance("migrate", data_dir=tmp_path)

    assert refused.returncode == 1
    assert "La base de données ne répond pas" in refused.stderr
    assert "make run" in refused.stderr


async def test_the_banner_first_url_answers_with_an_index(http: httpx.AsyncClient) -> None:
    r = await http.get("/api/v1")

    assert r.status_code == 200
    assert r.json() == {
        "name": "Centre de service Manao",
        "version": "1.0.0",
        "site": "/",
        "documentation": "/docs",
        "openapi": "/openapi.json",
        "liveness": "/healthz",
        "readiness": "/readyz",
    }
    assert (await http.get("/")).status_code == 200


def test_demo_roles_cover_every_role() -> None:
    assert {role for _, _, role in demo.USERS} == set(Role)
