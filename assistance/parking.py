"""Parked work: items that failed for good, kept in `bus.parked` until an administrator
retries or discards them (docs/decisions/0013). Nothing is dropped: a consumer terminates a
message, an outbox relay gives up on a row, only once its parked row is committed."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from assistance.failures import DEFAULT, FailurePolicy, Outage, is_outage, printable

log = logging.getLogger(__name__)

SOURCES = ("consumer", "outbox", "activity", "workflow")


@dataclass
class ParkedItem:
    source: str  # consumer | outbox | activity | workflow
    name: str  # the durable consumer, the outbox source, the activity type
    ref: str  # what makes it unique: stream:seq, outbox id, workflow id:step
    subject: str
    data: str
    error: str
    attempts: int
    kind: str | None = None
    dossier_id: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)


def dossier_of(data: dict[str, Any] | None) -> str | None:
    """The dossier an event or a payload concerns, when it names exactly one."""
    if not isinstance(data, dict):
        return None
    candidates: list[Any] = [data.get("dossier_id")]
    inner = data.get("data")
    if isinstance(inner, dict):
        candidates.append(inner.get("dossier_id"))
        ids = inner.get("dossier_ids")
        if isinstance(ids, list) and len(ids) == 1:
            candidates.append(ids[0])
    ids = data.get("dossier_ids")
    if isinstance(ids, list) and len(ids) == 1:
        candidates.append(ids[0])
    for value in candidates:
        if value:
            try:
                return str(uuid.UUID(str(value)))
            except ValueError:
                continue
    return None


async def park(conn: asyncpg.Pool | asyncpg.Connection, item: ParkedItem) -> int:
    """Record `item`; the same item parked again is reopened, not duplicated. Returns its id."""
    return await conn.fetchval(
        """INSERT INTO bus.parked (source, name, ref, kind, subject, headers, data, error,
               attempts, dossier_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (source, name, ref) DO UPDATE SET
               error = EXCLUDED.error, attempts = EXCLUDED.attempts,
               last_failed_at = now(), state = 'open', notified_at = NULL
           RETURNING id""",
        item.source,
        item.name,
        item.ref,
        item.kind,
        printable(item.subject),
        {printable(str(k)): printable(str(v)) for k, v in item.headers.items()},
        printable(item.data),
        printable(item.error)[:4000],
        item.attempts,
        uuid.UUID(item.dossier_id) if item.dossier_id else None,
    )


async def park_durably(
    pool: asyncpg.Pool, item: ParkedItem, policy: FailurePolicy = DEFAULT, keepalive: Any = None
) -> int:
    """Park, waiting for PostgreSQL as long as it takes: the caller drops the item only after
    this returns (a parking that fails must never lose the item)."""
    outage = Outage(policy)
    while True:
        try:
            return await park(pool, item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - retried: the item is still held
            level = logging.WARNING if is_outage(exc) else logging.ERROR
            log.log(level, "parking %s %s failed (%r); retrying", item.name, item.ref, exc)
            await outage.wait(keepalive)


async def open_count(conn: asyncpg.Pool | asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM bus.parked WHERE state = 'open'")
