"""The app of one process: the chosen parts on the kernel, with every part's migrations."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import asyncpg
from fastapi import FastAPI

from assistance import app as kernel
from assistance import db, demo
from assistance.directory import Role
from assistance.settings import Settings
from composition.parts import PERSONAL_DATA, SENDERS, all_schemas, choose, demo_hooks
from services.training.main import teach_demo_softwares


def create_app(settings: Settings, targets: Iterable[str] = ("all",)) -> FastAPI:
    """The app running these targets (`all`, or part names: composition/parts.py)."""
    return kernel.create_app(settings, choose(targets), all_schemas(), SENDERS, PERSONAL_DATA)


async def migrate(dsn: str, names: Iterable[str] | None = None) -> list[str]:
    """Apply the kernel's migrations, then every part's (or only the named parts')."""
    return await db.migrate(dsn, all_schemas(names))


async def load_demo(
    pool: asyncpg.Pool, data_dir: Path | None = None, *, trainers: bool = True
) -> list[tuple[str, Role, str]]:
    """The demo directory with every part's demo data; (email, role, token) per user, the
    tokens kept under `data_dir` when given. `trainers=False` leaves the demo trainer without
    softwares (tests that declare their own trainers)."""
    hooks = [h for h in demo_hooks() if trainers or h is not teach_demo_softwares]
    return await demo.load(pool, hooks, data_dir)
