"""NATS handlers of the bugs service; idempotent (an inbox row per event, in the same
transaction as its effect).

- `evolutions.version.released` (stream EVOLUTIONS): fixed bugs ship, dossiers are told (R8).
- `dossier.dossier.workaround_recorded|workaround_unavailable` (stream DOSSIER): the
  workaround base, and the gate a technician's link checks (R8).
- `dossier.dossier.customer_replied`: a customer's answer to a not-reproducible bug's
  questions reaches the developers.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from assistance.bus import PoisonMessage
from assistance.events import Event
from services.bugs import repo, service
from services.bugs.domain import State

log = logging.getLogger(__name__)

RELEASES = "bugs-releases"
DOSSIERS = "bugs-dossiers"
RELEASE_SUBJECTS = ["evolutions.version.released"]
DOSSIER_SUBJECTS = [
    "dossier.dossier.workaround_recorded",
    "dossier.dossier.workaround_unavailable",
    "dossier.dossier.customer_replied",
]


def _field(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise PoisonMessage(f"{name} missing")
    return value.strip()


def _dossier_id(data: dict[str, Any]) -> uuid.UUID:
    try:
        return uuid.UUID(str(data.get("dossier_id")))
    except ValueError as exc:
        raise PoisonMessage("dossier_id missing") from exc


class ReleaseConsumer:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def __call__(self, event: Event) -> None:
        software, version = _field(event.data, "software"), _field(event.data, "version")
        try:
            released_at = datetime.fromisoformat(str(event.data.get("released_at")))
        except ValueError:
            released_at = event.occurred_at
        if released_at.tzinfo is None:
            released_at = event.occurred_at
        async with self.pool.acquire() as conn, conn.transaction():
            if not await repo.first_handling(conn, RELEASES, event.id):
                return
            bugs = await service.version_released(conn, software, version, released_at)
        log.info("%s %s released: %d bug(s) shipped", software, version, len(bugs))


class DossierConsumer:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def __call__(self, event: Event) -> None:
        dossier_id = _dossier_id(event.data)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await repo.first_handling(conn, DOSSIERS, event.id):
                return
            if event.type == "dossier.dossier.customer_replied":
                await _answer(conn, event, dossier_id)
            else:
                await _workaround(conn, event, dossier_id)


async def _workaround(conn: asyncpg.Connection, event: Event, dossier_id: uuid.UUID) -> None:
    data = event.data
    details = (data.get("set") or {}).get("details") or {}
    text = data.get("workaround") or details.get("workaround")
    reason = details.get("workaround_none_reason")
    if event.type.endswith("workaround_unavailable"):
        text, reason = None, reason or "(raison non précisée)"
    await repo.upsert_workaround(
        conn,
        dossier_id,
        event.occurred_at,
        reference=data.get("reference"),
        text=text,
        none_reason=reason,
    )


async def _answer(conn: asyncpg.Connection, event: Event, dossier_id: uuid.UUID) -> None:
    """Only answers to a bug awaiting them are kept: other replies are the technician's."""
    link = await repo.current_link(conn, dossier_id)
    if link is None:
        return
    bug = await repo.lock_bug(conn, link["bug_id"])
    if bug is None or bug["state"] != State.not_reproducible.value:
        return
    entry = event.data.get("timeline") or {}
    text = str(entry.get("text") or "").strip()
    if text:
        await repo.record_answer(
            conn, event.id, bug["id"], dossier_id, entry.get("author"), text, event.occurred_at
        )
