"""The one interface through which a part plugs into the kernel.

A part is a service (or the Temporal worker) as the composition sees it: its name (the
`--target`), its HTTP routes, its background work started once the `Runtime` is open (outbox
relays, NATS consumers, responders, the worker), the package holding its `migrations/`
(its Postgres schema), the demo data it adds to the demo directory, and the hooks exporting
and erasing the personal data its schema holds (assistance/personal_data.py). The kernel
(`assistance/`) runs parts without knowing any of them; `composition/parts.py` lists them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from assistance.db import Migrations
from assistance.personal_data import PersonalData

if TYPE_CHECKING:
    import asyncpg
    from fastapi import APIRouter

    from assistance.directory import Role
    from assistance.runtime import Runtime


# The demo directory as a part's demo hook sees it: one user id per role, the software codes.
DemoHook = Callable[["asyncpg.Connection", "dict[Role, UUID]", "list[str]"], Awaitable[None]]


@dataclass(frozen=True)
class Part:
    name: str
    router: APIRouter | None = None
    start: Callable[[Runtime], None] | None = None
    # the package whose `migrations/` folder holds this part's schema (None: no schema)
    migrations: str | None = None
    demo: DemoHook | None = None
    # what its schema holds about people, for the RGPD export and erasure (None: no schema)
    personal_data: PersonalData | None = None
    # what readiness probes for a process running this part (assistance/readiness.py)
    uses_temporal: bool = False  # starts, signals or schedules workflows, or is the worker
    sends_commands: bool = False  # its requests become dossier commands: it needs a worker
    runs_worker: bool = False  # it is the Temporal worker
    takes_deposits: bool = False  # R13: its deposits need PostgreSQL only (the outbox)

    def schema(self) -> Migrations | None:
        return Migrations(self.name, self.migrations) if self.migrations else None


def schemas(parts: Iterable[Part]) -> list[Migrations]:
    """The migrations of these parts, in their order."""
    return [m for m in (part.schema() for part in parts) if m is not None]


def personal_data(parts: Iterable[Part]) -> list[PersonalData]:
    """The personal data hooks of these parts, in their order."""
    return [part.personal_data for part in parts if part.personal_data is not None]
