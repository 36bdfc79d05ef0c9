"""PostgreSQL: the connection pool and the migration runner (one schema per service)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from importlib import resources
from typing import NamedTuple

import asyncpg

from assistance import telemetry

log = logging.getLogger(__name__)


class Migrations(NamedTuple):
    """A schema's migrations: the component name recorded in `public.schema_migrations`, and
    the package whose `migrations/` folder holds its numbered `.sql` files."""

    component: str
    package: str


# The kernel's own schemas (the directory, the bus's outbox and dead letters), applied first;
# each part brings its own (assistance/parts.py), listed by the composition.
KERNEL = Migrations("assistance", "assistance")

_MIGRATION_LOCK = 7_233_001  # pg_advisory_lock key: one migrator at a time


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def create_pool(dsn: str, size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        init=_init_connection,
        reset=_reset_quietly,
        command_timeout=30,
    )
    assert pool is not None
    return pool


async def _reset_quietly(conn: asyncpg.Connection) -> None:
    """The pool's reset of a released connection, untraced: it is housekeeping, and traced it
    made a one-span trace of every release (issue 12)."""
    with telemetry.quiet():
        await conn.reset()


def _migrations(package: str) -> list[tuple[str, str]]:
    folder = resources.files(package) / "migrations"
    if not folder.is_dir():
        return []
    files = sorted(
        (f.name, f.read_text(encoding="utf-8")) for f in folder.iterdir() if f.name.endswith(".sql")
    )
    return files


async def migrate(dsn: str, sources: Iterable[Migrations] = (KERNEL,)) -> list[str]:
    """Apply the pending migrations of these sources, in their order, under an advisory lock;
    returns what was applied. The kernel's schemas come first unless they are named."""
    chosen = list(sources)
    if KERNEL not in chosen:
        chosen.insert(0, KERNEL)
    applied: list[str] = []
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS public.schema_migrations (
                   component text NOT NULL,
                   version text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (component, version))"""
        )
        for component, package in chosen:
            done = {
                r["version"]
                for r in await conn.fetch(
                    "SELECT version FROM public.schema_migrations WHERE component = $1",
                    component,
                )
            }
            for name, sql in _migrations(package):
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO public.schema_migrations (component, version) VALUES ($1, $2)",
                        component,
                        name,
                    )
                applied.append(f"{component}/{name}")
                log.info("migration applied: %s/%s", component, name)
    finally:
        try:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        finally:
            await conn.close()
    return applied
