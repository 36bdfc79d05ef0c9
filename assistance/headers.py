"""The same security headers on every response of every process (issue 13): API answers,
errors (404, 413, 503 included), static files, feeds, `/docs`, `/openapi.json`.

A pure ASGI wrapper around the whole application, outside Starlette's own error middleware, so
even the answer to an unexpected error carries them. A response that sets its own header (the
site's pages their CSP, an attachment its sandbox, `/docs` its asset list) keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Nothing but data: JSON, feeds, files. Pages that need more (the site, /docs) say so.
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": STRICT_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class SecurityHeaders:
    """Adds `headers` to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str] = HEADERS) -> None:
        self.app = app
        self.headers = dict(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                present = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name not in present:
                        present[name] = value
            await send(message)

        await self.app(scope, receive, sending)


def install(app: FastAPI, headers: Mapping[str, str] = HEADERS) -> None:
    """Wrap the whole middleware stack (ServerErrorMiddleware included): Starlette builds it
    at start-up, so the wrapper goes around the builder."""
    build = app.build_middleware_stack

    def wrapped() -> Any:
        return SecurityHeaders(build(), headers)

    app.build_middleware_stack = wrapped  # type: ignore[method-assign]
