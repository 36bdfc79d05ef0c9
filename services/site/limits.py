"""Rate limits on every sign-in path (issue 13): per address typed and per client address.

What counts: a failed token sign-in (guessing), and every sign-in link asked for (each sends
a mail). A successful sign-in costs nothing, so people signing in all day are never stopped.

Attempts are counted in Postgres (`site.sign_in_attempts`), so every site process shares them;
past the limit the answer is a 429 with a French message and `Retry-After`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import asyncpg

WINDOW = timedelta(minutes=15)
PER_ADDRESS = 5  # failed sign-ins or links asked for one e-mail address in the window
PER_CLIENT = 30  # the same, from one client address (a shared office NAT: more)
MESSAGE = "Trop de tentatives de connexion : par sécurité, réessayez dans {minutes} minute{s}."


@dataclass(frozen=True)
class Limited(Exception):
    retry_after: int  # seconds

    @property
    def message(self) -> str:
        minutes = max(1, -(-self.retry_after // 60))
        return MESSAGE.format(minutes=minutes, s="s" if minutes > 1 else "")


def _keys(email: str, client: str) -> list[tuple[str, int]]:
    return [(f"email:{email.strip().lower()}", PER_ADDRESS), (f"client:{client}", PER_CLIENT)]


async def check(pool: asyncpg.Pool, email: str, client: str) -> None:
    """Raise `Limited` if this address or this client has used up its attempts."""
    for key, limit in _keys(email, client):
        waits = await pool.fetchval(
            """SELECT ceil(extract(epoch FROM min(at) + $3::interval - now()))::int
               FROM (SELECT at FROM site.sign_in_attempts
                     WHERE key = $1 AND at > now() - $3::interval
                     ORDER BY at DESC LIMIT $2) recent
               HAVING count(*) >= $2""",
            key,
            limit,
            WINDOW,
        )
        if waits is not None:
            raise Limited(max(1, waits))


async def record(pool: asyncpg.Pool, email: str, client: str) -> None:
    """Count one attempt: a failed token sign-in, or a sign-in link asked for."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "DELETE FROM site.sign_in_attempts WHERE at < now() - $1::interval", WINDOW
        )
        await conn.executemany(
            "INSERT INTO site.sign_in_attempts (key) VALUES ($1)",
            [(key,) for key, _ in _keys(email, client)],
        )
