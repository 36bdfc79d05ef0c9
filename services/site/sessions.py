"""The session: a signed cookie holding a random session id, the form token (CSRF), the
language and the flash messages — no identity and no secret (issue 13).

The session id's hash keys a `site.sessions` row (user, created, expiry, last use, client
address). The site calls the services' APIs with a token derived from the id with the server's
secret (HMAC), whose hash is a directory token of the user expiring with the session: so a user
does on the site exactly what their role allows, the cookie alone gives no API token, and
signing out, expiry or an administrator's revocation make a copied cookie useless.

The cookie is HttpOnly, SameSite=Lax, Secure when the site is served over TLS, and expires
after `SITE_SESSION_HOURS`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from assistance import directory

COOKIE = "manao_session"
_SALT = "site-session"


@dataclass
class User:
    """The signed-in user, as the directory knows them."""

    id: str
    name: str
    email: str
    role: str
    organisation_id: str | None = None

    @property
    def is_customer(self) -> bool:
        return self.role == "customer"

    @property
    def is_technician(self) -> bool:
        return self.role in ("technician", "admin")

    @property
    def is_staff(self) -> bool:
        return self.role != "customer"


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    sid: str | None = None  # the random session id (cookie); None when signed out
    token: str | None = None  # derived from `sid` once the server-side row is found valid
    user: User | None = None  # read from the directory with the session row, never the cookie
    lang: str = "fr"
    flashes: list[tuple[str, str]] = field(default_factory=list)
    modified: bool = False

    def sign_in(self, sid: str, token: str, user: User) -> None:
        self.sid, self.token, self.user = sid, token, user
        self.csrf = secrets.token_urlsafe(24)  # a new form token with every new identity
        self.modified = True

    def sign_out(self) -> None:
        self.sid = self.token = self.user = None
        self.csrf = secrets.token_urlsafe(24)
        self.modified = True

    def flash(self, level: str, message: str) -> None:
        """A message shown once, on the next page (« success » or « error »)."""
        self.flashes.append((level, message))
        self.modified = True

    def take_flashes(self) -> list[tuple[str, str]]:
        taken, self.flashes = self.flashes, []
        if taken:
            self.modified = True
        return taken

    def set_lang(self, lang: str) -> None:
        self.lang = lang
        self.modified = True

    def csrf_ok(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf, str(sent))

    def dump(self) -> dict[str, Any]:
        return {"c": self.csrf, "s": self.sid, "l": self.lang, "f": self.flashes}

    @classmethod
    def load(cls, data: dict[str, Any]) -> Session:
        sid = data.get("s")
        return cls(
            csrf=str(data["c"]),
            sid=str(sid) if sid else None,
            lang=str(data.get("l") or "fr"),
            flashes=[(str(a), str(b)) for a, b in data.get("f") or []],
        )


def _hash(sid: str) -> bytes:
    return hashlib.sha256(sid.encode()).digest()


class SessionStore:
    def __init__(self, secret: str, max_age_seconds: int) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self._key = hashlib.sha256(("site-session-token:" + secret).encode()).digest()
        self.max_age = max_age_seconds

    def token_for(self, sid: str) -> str:
        """The API token of a session: useless without the server's secret."""
        return "mns_" + hmac.new(self._key, sid.encode(), hashlib.sha256).hexdigest()

    async def open(
        self, pool: asyncpg.Pool, session: Session, user: User, client: str, agent: str = ""
    ) -> None:
        """A new server-side session for `user` (any previous one of this browser is closed)."""
        await self.close(pool, session)
        sid = secrets.token_urlsafe(32)
        token = self.token_for(sid)
        expires = datetime.now(UTC) + timedelta(seconds=self.max_age)
        user_id = uuid.UUID(user.id)
        async with pool.acquire() as conn, conn.transaction():
            await directory.issue_token(
                conn, user_id, "session du site", token=token, expires_at=expires
            )
            await conn.execute(
                """INSERT INTO site.sessions
                       (id_hash, user_id, token_hash, expires_at, client_address, user_agent)
                   VALUES ($1, $2, $3, $4, $5, $6)""",
                _hash(sid),
                user_id,
                directory.hash_token(token),
                expires,
                client[:100],
                agent[:300],
            )
        session.sign_in(sid, token, user)

    async def resolve(self, pool: asyncpg.Pool, session: Session) -> None:
        """Who this browser's session id belongs to, if the session is still valid (not
        signed out, revoked or expired, and its token alive); else the session is signed out."""
        if session.sid is None:
            return
        row = await pool.fetchrow(
            """UPDATE site.sessions s SET last_used_at = now()
               FROM directory.tokens t, directory.users u
               WHERE s.id_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
                 AND t.token_hash = s.token_hash AND t.revoked_at IS NULL
                 AND u.id = s.user_id
               RETURNING u.id, u.name, u.email, u.role, u.organisation_id""",
            _hash(session.sid),
        )
        if row is None:
            await self.close(pool, session)  # expired or revoked: its token dies too
            session.sign_out()
            return
        session.user = User(
            id=str(row["id"]),
            name=row["name"],
            email=row["email"],
            role=row["role"],
            organisation_id=str(row["organisation_id"]) if row["organisation_id"] else None,
        )
        session.token = self.token_for(session.sid)

    async def close(self, pool: asyncpg.Pool, session: Session) -> None:
        """Sign-out: the session row and its token revoked."""
        if session.sid is None:
            return
        await revoke(pool, _hash(session.sid))

    def read(self, request: Request) -> Session:
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                return Session.load(self.serializer.loads(raw, max_age=self.max_age))
            except (BadSignature, KeyError, TypeError, ValueError):
                pass
        return Session(modified=True)  # a new visitor: the cookie carries their form token

    def write(self, request: Request, response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            self.serializer.dumps(session.dump()),
            max_age=self.max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=is_tls(request),
        )


def is_tls(request: Request) -> bool:
    settings = request.app.state.settings
    return request.url.scheme == "https" or str(settings.public_url).startswith("https://")


async def revoke(pool: asyncpg.Pool, id_hash: bytes, user_id: uuid.UUID | None = None) -> bool:
    """One session revoked with its token (of this user, if named); True if it was live."""
    async with pool.acquire() as conn, conn.transaction():
        token_hash = await conn.fetchval(
            """UPDATE site.sessions SET revoked_at = now()
               WHERE id_hash = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR user_id = $2)
               RETURNING token_hash""",
            id_hash,
            user_id,
        )
        if token_hash is None:
            return False
        await conn.execute(
            "UPDATE directory.tokens SET revoked_at = now() WHERE token_hash = $1 "
            "AND revoked_at IS NULL",
            token_hash,
        )
        return True


async def revoke_user(pool: asyncpg.Pool, user_id: uuid.UUID) -> int:
    """Every session and every API token of a user revoked (an administrator's act)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE site.sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
            user_id,
        )
        return await directory.revoke_user_tokens(conn, user_id)


async def sessions_of(pool: asyncpg.Pool, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """A user's live sessions, newest first; `key` names one for revocation (a hash's hex,
    not the session id)."""
    rows = await pool.fetch(
        """SELECT encode(id_hash, 'hex') AS key, created_at, last_used_at, expires_at,
                  client_address, user_agent
           FROM site.sessions
           WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
           ORDER BY last_used_at DESC""",
        user_id,
    )
    return [dict(r) for r in rows]


def key_of(session: Session) -> str | None:
    return _hash(session.sid).hex() if session.sid else None
