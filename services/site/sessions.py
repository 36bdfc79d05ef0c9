"""The session: a signed cookie holding who is signed in and the form token (CSRF).

The cookie is HttpOnly, SameSite=Lax, Secure when the site is served over TLS, and expires
after `SITE_SESSION_HOURS`. It carries the signed-in user's API token: the site calls the
services' APIs with it, so a user can do on the site exactly what their token allows.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

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
    token: str | None = None
    user: User | None = None
    lang: str = "fr"
    flashes: list[tuple[str, str]] = field(default_factory=list)
    issued: bool = False  # the token was made for this session (sign-in link): revoke it
    modified: bool = False

    def sign_in(self, token: str, user: User, issued: bool = False) -> None:
        self.token, self.user, self.issued = token, user, issued
        self.csrf = secrets.token_urlsafe(24)  # a new form token with every new identity
        self.modified = True

    def sign_out(self) -> None:
        self.token = self.user = None
        self.issued = False
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
        return {
            "c": self.csrf,
            "t": self.token,
            "u": self.user.__dict__ if self.user else None,
            "l": self.lang,
            "f": self.flashes,
            "i": self.issued,
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> Session:
        user = data.get("u")
        return cls(
            csrf=str(data["c"]),
            token=data.get("t"),
            user=User(**user) if user else None,
            lang=str(data.get("l") or "fr"),
            flashes=[(str(a), str(b)) for a, b in data.get("f") or []],
            issued=bool(data.get("i")),
        )


class SessionStore:
    def __init__(self, secret: str, max_age_seconds: int) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.max_age = max_age_seconds

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
