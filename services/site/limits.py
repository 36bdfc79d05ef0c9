"""Rate limits on every sign-in path (issue 13): per address typed and per client address.

What counts: a failed token sign-in (guessing), and every sign-in link asked for (each sends
a mail). A successful sign-in costs nothing, so people signing in all day are never stopped.
Attempts are counted by the kernel (assistance/rate_limits.py), so every site process shares
them; past the limit the answer is a 429 with a message in the visitor's language and
`Retry-After`.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from assistance.rate_limits import Limited, Rule
from assistance.rate_limits import check as _check
from assistance.rate_limits import record as _record

WINDOW = timedelta(minutes=15)
PER_ADDRESS = 5  # failed sign-ins or links asked for one e-mail address in the window
PER_CLIENT = 30  # the same, from one client address (a shared office NAT: more)

__all__ = ["Limited", "check", "record"]


def _rules(email: str, client: str) -> list[Rule]:
    return [
        Rule(f"email:{email.strip().lower()}", PER_ADDRESS),
        Rule(f"client:{client}", PER_CLIENT),
    ]


async def check(pool: asyncpg.Pool, email: str, client: str) -> None:
    """Raise `Limited` if this address or this client has used up its attempts."""
    await _check(pool, _rules(email, client), WINDOW)


async def record(pool: asyncpg.Pool, email: str, client: str) -> None:
    """Count one attempt: a failed token sign-in, or a sign-in link asked for."""
    await _record(pool, _rules(email, client), WINDOW)
