"""Rate limits shared by every process (issue 13): attempts counted in PostgreSQL
(`web.attempts`), so two replicas of a part count together.

A rule is a key (`email:…`, `client:…`, `follow:client:…`) and how many attempts it may make
in the window; past it, `Limited` says how long to wait. The caller decides what counts as an
attempt (a failed sign-in, a link mailed) and words the refusal (a 429 with `Retry-After`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import asyncpg


@dataclass(frozen=True)
class Rule:
    key: str
    limit: int


@dataclass(frozen=True)
class Limited(Exception):
    retry_after: int  # seconds

    @property
    def minutes(self) -> int:
        return max(1, -(-self.retry_after // 60))


async def check(pool: asyncpg.Pool, rules: Sequence[Rule], window: timedelta) -> None:
    """Raise `Limited` if one of the keys has used up its attempts in the window."""
    for rule in rules:
        waits = await pool.fetchval(
            """SELECT ceil(extract(epoch FROM min(at) + $3::interval - now()))::int
               FROM (SELECT at FROM web.attempts
                     WHERE key = $1 AND at > now() - $3::interval
                     ORDER BY at DESC LIMIT $2) recent
               HAVING count(*) >= $2""",
            rule.key,
            rule.limit,
            window,
        )
        if waits is not None:
            raise Limited(max(1, waits))


async def record(pool: asyncpg.Pool, rules: Sequence[Rule], window: timedelta) -> None:
    """Count one attempt against each key (and forget the attempts older than the window)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "DELETE FROM web.attempts WHERE key = ANY($1::text[]) AND at < now() - $2::interval",
            [r.key for r in rules],
            window,
        )
        await conn.executemany(
            "INSERT INTO web.attempts (key) VALUES ($1)", [(r.key,) for r in rules]
        )


async def take(pool: asyncpg.Pool, rules: Sequence[Rule], window: timedelta) -> None:
    """Check, then count: for paths where every call is an attempt (each sends a mail)."""
    await check(pool, rules, window)
    await record(pool, rules, window)
