"""As root, the embedded PostgreSQL runs as the pgserver account; a checkout in a folder that
account cannot enter (`mktemp -d`, root's home) still works, and no folder's permissions change
(decision 0018)."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from deploy.local import stack as stack_module
from deploy.local.stack import (
    PG_SYSTEM_USER,
    LocalStack,
    StackConfig,
    prepare_pg_install,
    reachable_by,
    relocated_cluster,
)

OTHER_UID, OTHER_GID = 4_000_017, 4_000_017  # an account that owns nothing here


def _account() -> tuple[int, int]:
    """The account files are handed to: pgserver's as root, else ours (only root may chown)."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        return OTHER_UID, OTHER_GID
    return entry.pw_uid, entry.pw_gid


@pytest.fixture
def private_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="assistance-private-"))  # 0700, as `mktemp -d`
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_folder_closed_to_others_is_not_reachable(private_folder: Path) -> None:
    target = private_folder / "checkout" / "data" / "pg"
    target.parent.mkdir(parents=True)

    assert stat.S_IMODE(private_folder.stat().st_mode) == 0o700
    assert reachable_by(target, OTHER_UID, OTHER_GID) is False
    assert reachable_by(target, private_folder.stat().st_uid, OTHER_GID) is True
    assert reachable_by(Path(tempfile.gettempdir()) / "anything", OTHER_UID, OTHER_GID) is True


def _fake_wheel(site: Path) -> Path:
    pginstall = site / "pgserver" / "pginstall"
    for name, text in {
        "bin/initdb": "initdb",
        "bin/postgres": "postgres",
        "bin/psql": "psql",
        "lib/postgresql/plpgsql.so": "plpgsql",
        "share/postgresql/postgres.bki": "bki",
        "include/postgres.h": "header",
    }.items():
        (pginstall / name).parent.mkdir(parents=True, exist_ok=True)
        (pginstall / name).write_text(text)
    (site / "pgserver.libs").mkdir()
    (site / "pgserver.libs" / "libpq-1.so.5").write_text("libpq")
    return pginstall


def test_the_programs_are_copied_once_in_the_wheel_layout(tmp_path: Path) -> None:
    uid, gid = _account()
    pginstall = _fake_wheel(tmp_path / "site")
    home = tmp_path / "home"
    home.mkdir()

    bin_dir = prepare_pg_install(pginstall, home, uid, gid)

    root = bin_dir.parent.parent.parent
    assert bin_dir == root / "pgserver" / "pginstall" / "bin"
    assert root.parent == home
    assert sorted(p.name for p in bin_dir.iterdir()) == ["initdb", "postgres"]
    assert (bin_dir / "../lib/postgresql/plpgsql.so").read_text() == "plpgsql"
    assert (bin_dir / "../share/postgresql/postgres.bki").read_text() == "bki"
    assert (bin_dir / "../../../pgserver.libs/libpq-1.so.5").read_text() == "libpq"  # the rpath
    assert not (bin_dir / "../include").exists()
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in [root, *root.rglob("*")]}
    assert owners == {(uid, gid)}
    assert [p.name for p in home.iterdir()] == [root.name]  # no staging folder left

    (bin_dir / "postgres").write_text("kept")
    assert prepare_pg_install(pginstall, home, uid, gid) == bin_dir
    assert (bin_dir / "postgres").read_text() == "kept"  # not copied again


def test_a_cluster_belongs_to_its_data_directory_until_reset(tmp_path: Path) -> None:
    uid, gid = _account()
    home = tmp_path / "home"
    home.mkdir()
    data, other = tmp_path / "data", tmp_path / "other"
    data.mkdir()
    other.mkdir()

    pgdata = relocated_cluster(data, home, uid, gid)
    other_pgdata = relocated_cluster(other, home, uid, gid)
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("16")

    assert pgdata.parent.parent == home / "clusters"
    assert (data / "pg-cluster").read_text() == f"{pgdata}\n"
    assert relocated_cluster(data, home, uid, gid) == pgdata
    assert (pgdata / "PG_VERSION").read_text() == "16"  # a restart keeps the data

    shutil.rmtree(other)  # e.g. pytest removing an old temporary folder
    (data / "pg-cluster").unlink()  # `make reset`
    assert relocated_cluster(data, home, uid, gid) == pgdata
    assert not pgdata.exists()  # a fresh cluster: initdb runs again
    assert not other_pgdata.parent.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another account")
async def test_postgres_starts_from_a_checkout_in_a_private_folder(
    private_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the checkout's virtual environment, with the wheel's real programs, inside the 0700 folder
    wheel = Path(stack_module._postgres_bin()).parent.parent
    site = private_folder / "checkout" / ".venv" / "site-packages"
    shutil.copytree(wheel / "pginstall", site / "pgserver" / "pginstall", symlinks=True)
    shutil.copytree(wheel.parent / "pgserver.libs", site / "pgserver.libs", symlinks=True)
    monkeypatch.setattr(stack_module, "_postgres_bin", lambda: site / "pgserver/pginstall/bin")
    data = private_folder / "checkout" / "data"
    data.mkdir()
    modes_before = {p: p.stat().st_mode for p in private_folder.parents}
    local = LocalStack(StackConfig(data_dir=data, persistent=False, ui=False), lambda _: None)
    try:
        await local.start_postgres()
        connection = await asyncpg.connect(local._postgres.url)
        try:
            assert await connection.fetchval("SELECT current_user") == "postgres"
        finally:
            await connection.close()
    finally:
        await local.stop_postgres()
        pgdata = Path((data / "pg-cluster").read_text().strip())
        shutil.rmtree(pgdata.parent, ignore_errors=True)

    assert stat.S_IMODE(os.stat(private_folder).st_mode) == 0o700
    assert {p: p.stat().st_mode for p in private_folder.parents} == modes_before
    assert "ready to accept connections" in (data / "postgres.log").read_text()
    assert not local._postgres.bin_dir.is_relative_to(private_folder)
    assert not pgdata.is_relative_to(private_folder)
