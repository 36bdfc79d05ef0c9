"""The user's own sessions (issue 13): where they are signed in, and revoking any of them."""

from __future__ import annotations

import re
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.site import sessions
from services.site.web import (
    AnyUser,
    PageError,
    SiteRoute,
    page,
    read_form,
    redirect,
    session_of,
    session_store,
)

router = APIRouter(route_class=SiteRoute, include_in_schema=False)
_KEY = re.compile(r"^[0-9a-f]{64}$")


@router.get("/compte/sessions")
async def my_sessions(request: Request, user: AnyUser) -> Response:
    found = await sessions.sessions_of(request.app.state.pool, uuid.UUID(user.id))
    return page(
        request,
        "account_sessions.html",
        title="Mes sessions",
        sessions=found,
        current=sessions.key_of(session_of(request)),
    )


@router.post("/compte/sessions/{key}/revoquer")
async def revoke(request: Request, key: str, user: AnyUser) -> Response:
    """Only one's own sessions; revoking the current one signs this browser out."""
    await read_form(request)
    if not _KEY.match(key):
        raise PageError(404, "Session inconnue.")
    current = session_of(request)
    pool = request.app.state.pool
    if not await sessions.revoke(pool, bytes.fromhex(key), uuid.UUID(user.id)):
        raise PageError(404, "Session inconnue ou déjà fermée.")
    if key == sessions.key_of(current):
        await session_store(request).close(pool, current)
        current.sign_out()
        current.flash("success", "Session fermée : vous êtes déconnecté.")
        return redirect("/")
    current.flash("success", "Session fermée.")
    return redirect("/compte/sessions")
