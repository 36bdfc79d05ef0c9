"""« Travail bloqué » in the back office, for administrators (docs/decisions/0013): what the
operations API lists, with retry and discard on each parked item, and restart or « marquer
comme traité » on each stopped follow-up (workflow)."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.site.backend import ApiError
from services.site.web import (
    PageError,
    SiteRoute,
    User,
    backend,
    gettext_of,
    new_submission,
    once,
    page,
    read_form,
    redirect,
    session_of,
    signed_in,
    submission_of,
    tr,
)

router = APIRouter(route_class=SiteRoute, include_in_schema=False)

AdminUser = Annotated[User, Depends(signed_in("admin"))]
ACTIONS = {"relancer": "retry", "abandonner": "discard"}
WORKFLOW_ACTIONS = {"relancer": "retry", "traite": "discard"}
WORKFLOW_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}$")  # as the API takes it


@router.get("/bureau/operations")
async def stuck_work(request: Request, user: AdminUser) -> Response:
    state = request.query_params.get("etat", "open")
    state = state if state in ("open", "retried", "discarded", "all") else "open"
    found = await backend(request).get("/api/v1/operations/stuck", state=state)
    return page(
        request,
        "office_operations.html",
        title=tr(request, "Stuck work"),
        s=found,
        state=state,
    )


async def _act(request: Request, path: str, done: str) -> Response:
    """Post one administrator's action to the operations API (the form's submission key as
    Idempotency-Key); its refusal or `done` is told on the « travail bloqué » page."""
    form = await read_form(request)
    session = session_of(request)
    try:
        await backend(request).post(path, headers=once(submission_of(form) or new_submission()))
    except ApiError as exc:
        if exc.status not in (404, 409, 503):
            raise
        session.flash("error", exc.message)
    else:
        session.flash("success", done)
    return redirect("/bureau/operations")


@router.post("/bureau/operations/{parked_id}/{action}")
async def act(request: Request, parked_id: int, action: str, user: AdminUser) -> Response:
    _ = gettext_of(request)
    chosen = ACTIONS.get(action)
    if chosen is None:
        raise PageError(404, _("Page not found."))
    return await _act(
        request,
        f"/api/v1/operations/stuck/{parked_id}/{chosen}",
        _("Sent again: it is no longer in the list.")
        if chosen == "retry"
        else _("Discarded: it is no longer in the list."),
    )


@router.post("/bureau/operations/suivis/{workflow_id}/{action}")
async def act_on_workflow(
    request: Request, workflow_id: str, action: str, user: AdminUser
) -> Response:
    _ = gettext_of(request)
    chosen = WORKFLOW_ACTIONS.get(action)
    if chosen is None or not WORKFLOW_ID.match(workflow_id):
        raise PageError(404, _("Page not found."))
    return await _act(
        request,
        f"/api/v1/operations/workflows/{quote(workflow_id, safe='')}/{chosen}",
        _("Restarted: the follow-up goes on from where it stopped.")
        if chosen == "retry"
        else _("Marked as handled: it is no longer in the list."),
    )
