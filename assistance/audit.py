"""The audit trail (issue 13 item 6): who did what, when, from where.

Recorded: every staff read of a dossier (`dossier.read`), every sign-in to the site
(`sign_in`, `sign_in.failed`), every permission change (`permission.*`: product managers of a
software, a user's access revoked). Administrators read it through
`GET /api/v1/operations/audit` as JSON or CSV.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from assistance.directory import Principal


@dataclass(frozen=True)
class Actor:
    id: uuid.UUID | None
    email: str = ""
    role: str = ""

    @classmethod
    def of(cls, who: Principal) -> Actor:
        return cls(who.user_id, who.email, who.role.value if who.role else "")


async def record(
    conn: asyncpg.Pool | asyncpg.Connection,
    actor: Actor | Principal,
    action: str,
    target: str = "",
    client: str = "",
    **details: Any,
) -> None:
    if isinstance(actor, Principal):
        actor = Actor.of(actor)
    await conn.execute(
        """INSERT INTO audit.events
               (actor_id, actor_email, actor_role, action, target, client_address, details)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        actor.id,
        actor.email,
        actor.role,
        action,
        target,
        client[:100],
        json.loads(json.dumps(details, default=str)),  # the pool's codec encodes jsonb
    )


async def events(
    conn: asyncpg.Pool | asyncpg.Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: uuid.UUID | None = None,
    action: str | None = None,
    target: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Newest first; `action` matches a prefix (`permission.` gives every permission change)."""
    rows = await conn.fetch(
        """SELECT id, at, actor_id, actor_email, actor_role, action, target, client_address,
                  details
           FROM audit.events
           WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::timestamptz IS NULL OR at < $2)
             AND ($3::uuid IS NULL OR actor_id = $3)
             AND ($4::text IS NULL OR starts_with(action, $4))
             AND ($5::text IS NULL OR target = $5)
           ORDER BY at DESC, id DESC LIMIT $6 OFFSET $7""",
        since,
        until,
        actor,
        action,
        target,
        limit,
        offset,
    )
    return [dict(r) for r in rows]
