"""The directory: organisations, users with one role each, hashed API tokens, softwares.

Written only through this module; every service reads it through these functions.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg


class Role(StrEnum):
    customer = "customer"
    technician = "technician"
    trainer = "trainer"
    developer = "developer"
    product_manager = "product_manager"
    project_manager = "project_manager"
    admin = "admin"


STAFF = frozenset(Role) - {Role.customer}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user with one role, or nobody (anonymous)."""

    user_id: uuid.UUID | None
    role: Role | None
    organisation_id: uuid.UUID | None = None
    email: str = ""
    name: str = ""

    @property
    def anonymous(self) -> bool:
        return self.user_id is None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


ANONYMOUS = Principal(user_id=None, role=None)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_organisation(
    conn: asyncpg.Pool | asyncpg.Connection,
    name: str,
    email_domains: list[str] | None = None,
    context: str = "",
) -> uuid.UUID:
    row = await conn.fetchrow(
        """INSERT INTO directory.organisations (id, name, email_domains, context)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (name) DO UPDATE SET email_domains = EXCLUDED.email_domains
           RETURNING id""",
        uuid.uuid4(),
        name,
        [d.lower() for d in email_domains or []],
        context,
    )
    return row["id"]


async def create_user(
    conn: asyncpg.Pool | asyncpg.Connection,
    email: str,
    name: str,
    role: Role,
    organisation_id: uuid.UUID | None = None,
) -> uuid.UUID:
    if role is Role.customer and organisation_id is None:
        raise ValueError("a customer belongs to an organisation")
    row = await conn.fetchrow(
        """INSERT INTO directory.users (id, email, name, role, organisation_id)
           VALUES ($1, lower($2), $3, $4, $5)
           ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name, role = EXCLUDED.role,
                organisation_id = EXCLUDED.organisation_id
           RETURNING id""",
        uuid.uuid4(),
        email,
        name,
        role.value,
        organisation_id,
    )
    return row["id"]


async def issue_token(
    conn: asyncpg.Pool | asyncpg.Connection,
    user_id: uuid.UUID,
    label: str = "",
    *,
    token: str | None = None,
    expires_at: datetime | None = None,
) -> str:
    """A new API token for the user (or this one, e.g. a site session's derived token); only
    its hash is stored, so show it once."""
    token = token or "mna_" + secrets.token_urlsafe(32)
    await conn.execute(
        """INSERT INTO directory.tokens (token_hash, user_id, label, expires_at)
           VALUES ($1, $2, $3, $4)""",
        hash_token(token),
        user_id,
        label,
        expires_at,
    )
    return token


async def revoke_user_tokens(conn: asyncpg.Pool | asyncpg.Connection, user_id: uuid.UUID) -> int:
    """Every live token of the user revoked (their site sessions die with them); how many."""
    result = await conn.execute(
        "UPDATE directory.tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
    )
    return int(result.rpartition(" ")[2])


async def revoke_token(conn: asyncpg.Pool | asyncpg.Connection, token: str) -> bool:
    result = await conn.execute(
        "UPDATE directory.tokens SET revoked_at = now() WHERE token_hash = $1 "
        "AND revoked_at IS NULL",
        hash_token(token),
    )
    return result.endswith("1")


async def authenticate(conn: asyncpg.Pool | asyncpg.Connection, token: str) -> Principal | None:
    row = await conn.fetchrow(
        """SELECT u.id, u.role, u.organisation_id, u.email, u.name
           FROM directory.tokens t JOIN directory.users u ON u.id = t.user_id
           WHERE t.token_hash = $1 AND t.revoked_at IS NULL
             AND (t.expires_at IS NULL OR t.expires_at > now())""",
        hash_token(token),
    )
    return _principal(row)


def _principal(row: asyncpg.Record | None) -> Principal | None:
    if row is None:
        return None
    return Principal(
        user_id=row["id"],
        role=Role(row["role"]),
        organisation_id=row["organisation_id"],
        email=row["email"],
        name=row["name"],
    )


async def organisation_for_email(
    conn: asyncpg.Pool | asyncpg.Connection, email: str
) -> uuid.UUID | None:
    """The organisation of a known user, else the one owning the address's domain."""
    email = email.lower()
    return await conn.fetchval(
        """SELECT coalesce(
               (SELECT organisation_id FROM directory.users WHERE email = $1),
               (SELECT id FROM directory.organisations WHERE $2 = ANY(email_domains)
                ORDER BY name LIMIT 1))""",
        email,
        email.rpartition("@")[2],
    )


async def customer_organisation(
    conn: asyncpg.Pool | asyncpg.Connection, email: str
) -> uuid.UUID | None:
    """The organisation of the customer user with this address, else None (never a guess from
    the address's domain)."""
    return await conn.fetchval(
        "SELECT organisation_id FROM directory.users WHERE email = $1 AND role = 'customer'",
        email.strip().lower(),
    )


async def organisation_exists(conn: asyncpg.Pool | asyncpg.Connection, org_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM directory.organisations WHERE id = $1", org_id))


async def add_software(conn: asyncpg.Pool | asyncpg.Connection, code: str, name: str) -> None:
    await conn.execute(
        """INSERT INTO directory.softwares (code, name) VALUES ($1, $2)
           ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name""",
        code,
        name,
    )


async def add_software_version(
    conn: asyncpg.Pool | asyncpg.Connection, software: str, version: str
) -> None:
    await conn.execute(
        """INSERT INTO directory.software_versions (software, version) VALUES ($1, $2)
           ON CONFLICT DO NOTHING""",
        software,
        version,
    )


class SoftwareCatalogue:
    """The known software codes, read at most every `ttl` seconds; an unknown code is checked
    against the database once more before it is refused, so a new software is usable at once."""

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self._codes: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    async def knows(self, conn: asyncpg.Pool | asyncpg.Connection, code: str) -> bool:
        now = time.monotonic()
        if code not in self._codes or now - self._read_at > self.ttl:
            self._codes = frozenset(await software_codes(conn))
            self._read_at = now
        return code in self._codes


async def software_codes(conn: asyncpg.Pool | asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT code FROM directory.softwares ORDER BY code")
    return [r["code"] for r in rows]


async def list_softwares(conn: asyncpg.Pool | asyncpg.Connection) -> list[dict[str, object]]:
    rows = await conn.fetch(
        """SELECT s.code, s.name,
                  coalesce(array_agg(v.version ORDER BY v.released_at)
                           FILTER (WHERE v.version IS NOT NULL), '{}') AS versions
           FROM directory.softwares s LEFT JOIN directory.software_versions v
             ON v.software = s.code
           GROUP BY s.code, s.name ORDER BY s.code"""
    )
    return [dict(r) for r in rows]


async def emails_with_role(conn: asyncpg.Pool | asyncpg.Connection, role: Role) -> list[str]:
    """The addresses of every user holding `role`, sorted; a staff member erased (who left:
    audit.erased_staff) is no longer mailed."""
    rows = await conn.fetch(
        """SELECT email FROM directory.users u WHERE role = $1
             AND NOT EXISTS (SELECT 1 FROM audit.erased_staff e WHERE e.user_id = u.id)
           ORDER BY email""",
        role.value,
    )
    return [r["email"] for r in rows]


async def user_email(
    conn: asyncpg.Pool | asyncpg.Connection, user_id: uuid.UUID | str
) -> str | None:
    """The address of a user, or None if there is no such user."""
    try:
        uid = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))
    except ValueError:
        return None
    return await conn.fetchval("SELECT email FROM directory.users WHERE id = $1", uid)


async def organisation_name(
    conn: asyncpg.Pool | asyncpg.Connection, org_id: uuid.UUID | None
) -> str | None:
    """The name of an organisation, or None if there is none."""
    if org_id is None:
        return None
    return await conn.fetchval("SELECT name FROM directory.organisations WHERE id = $1", org_id)


async def get_organisation(
    conn: asyncpg.Pool | asyncpg.Connection, org_id: uuid.UUID
) -> dict[str, object] | None:
    """An organisation's id, name and work context (the R7 training brief), or None."""
    row = await conn.fetchrow(
        "SELECT id, name, context FROM directory.organisations WHERE id = $1", org_id
    )
    return dict(row) if row is not None else None


async def principal_by_email(
    conn: asyncpg.Pool | asyncpg.Connection, email: str
) -> Principal | None:
    """The user with this e-mail address, if any (sign-in by mail link)."""
    return _principal(await conn.fetchrow(_USER + "email = $1", email.strip().lower()))


async def principal_by_id(
    conn: asyncpg.Pool | asyncpg.Connection, user_id: uuid.UUID
) -> Principal | None:
    return _principal(await conn.fetchrow(_USER + "id = $1", user_id))


_USER = "SELECT id, role, organisation_id, email, name FROM directory.users WHERE "
