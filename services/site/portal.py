"""The customer portal: my organisation's dossiers, a dossier's timeline, replying with
attachments, confirming a resolution, reopening (R10), rating the closure; and downloading
attachments (customers and staff alike)."""

from __future__ import annotations

import math
import uuid
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from assistance.text import CONTROL_MESSAGE, is_clean_text
from services.site import attached, i18n, repo
from services.site.backend import ApiError
from services.site.uploads import UploadRefused, read_uploads
from services.site.web import (
    AnyUser,
    CustomerUser,
    PageError,
    SiteRoute,
    backend,
    field,
    flash_outcome,
    gettext_of,
    once,
    page,
    read_form,
    redirect,
    session_of,
    submission_of,
    tr,
)

router = APIRouter(route_class=SiteRoute, include_in_schema=False)

PAGE_SIZE = 25


def page_number(request: Request) -> int:
    try:
        return max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        return 1


# « En cours / Clos » on the customer's list (issue 14): the page's words, the API's filter.
STATES = {"en-cours": True, "clos": False}


@router.get("/espace")
async def my_dossiers(request: Request, user: CustomerUser) -> Response:
    q = request.query_params.get("q", "").strip()[:200]
    state = request.query_params.get("etat", "")
    state = state if state in STATES else ""
    number = page_number(request)
    found = await backend(request).get(
        "/api/v1/dossiers",
        q=q or None,
        open=None if not state else str(STATES[state]).lower(),
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    return page(
        request,
        "portal_list.html",
        title=tr(request, "My dossiers"),
        items=found["items"],
        total=found["total"],
        q=q,
        state=state,
        page_no=number,
        pages=max(1, math.ceil(found["total"] / PAGE_SIZE)),
    )


@router.get("/espace/dossiers/{dossier_id}")
async def my_dossier(request: Request, dossier_id: uuid.UUID, user: CustomerUser) -> Response:
    dossier = await backend(request).get(f"/api/v1/dossiers/{dossier_id}")
    pool = request.app.state.pool
    timeline, others = attached.place(
        dossier["timeline"], await repo.list_attachments(pool, dossier_id)
    )
    rating = None
    closed_at = i18n.parse(dossier.get("closed_at"))
    if dossier["status"] == "closed" and closed_at is not None:
        rating = await repo.rating_of(pool, dossier_id, closed_at)
    return page(
        request,
        "portal_dossier.html",
        title=dossier["reference"],
        d=dossier,
        entries=timeline,
        attachments=others,
        screen_share=_screen_share(dossier),
        rating=rating,
        errors={},
        values={},
    )


def _screen_share(dossier: dict[str, Any]) -> dict[str, Any] | None:
    """The last screen-sharing invitation a technician sent (R6): its link and its time, shown
    at the top of the customer's page while the dossier is open."""
    if dossier.get("status") == "closed":
        return None
    for entry in reversed(dossier.get("timeline") or []):
        link = (entry.get("data") or {}).get("link")
        if entry.get("kind") == "screen_share" and isinstance(link, str):
            return {"link": link, "at": entry.get("at"), "author": entry.get("author")}
    return None


async def _command(
    request: Request,
    dossier_id: uuid.UUID,
    form: FormData,
    path: str,
    body: dict[str, Any],
    done: str,
) -> Response:
    """Send a lifecycle command; its refusal (409) is shown on the dossier page."""
    session = session_of(request)
    try:
        answer = await backend(request).post(
            f"/api/v1/dossiers/{dossier_id}/{path}", body, once(submission_of(form))
        )
    except ApiError as exc:
        if exc.status not in (409, 422, 503):
            raise
        session.flash("error", exc.message)
    else:
        flash_outcome(request, answer, done)
    return redirect(f"/espace/dossiers/{dossier_id}")


@router.post("/espace/dossiers/{dossier_id}/repondre")
async def reply(request: Request, dossier_id: uuid.UUID, user: CustomerUser) -> Response:
    _ = gettext_of(request)
    form = await read_form(request)
    text = field(form, "text")
    session = session_of(request)
    try:
        uploads = await read_uploads(form, "files", _)
    except UploadRefused as exc:
        session.flash("error", exc.message)
        return redirect(f"/espace/dossiers/{dossier_id}#reply")
    if not text:
        session.flash("error", _("Write your message."))
        return redirect(f"/espace/dossiers/{dossier_id}#reply")
    submission = submission_of(form)
    try:
        answer = await backend(request).post(
            f"/api/v1/dossiers/{dossier_id}/responses", {"text": text}, once(submission)
        )
    except ApiError as exc:
        if exc.status not in (409, 422, 503):
            raise
        session.flash("error", exc.message)
        return redirect(f"/espace/dossiers/{dossier_id}#reply")
    if uploads:
        entry_at = None
        if not answer.pending and isinstance(answer.body, dict):
            entry_at = attached.entry_for(answer.body.get("timeline") or [], text)
        await repo.add_attachments(
            request.app.state.pool,
            dossier_id,
            uploads,
            uuid.UUID(user.id),
            user.name,
            submission,
            entry_at,
        )
    flash_outcome(request, answer, _("Your message is sent to your technician."))
    return redirect(f"/espace/dossiers/{dossier_id}")


@router.post("/espace/dossiers/{dossier_id}/confirmer")
async def confirm(request: Request, dossier_id: uuid.UUID, user: CustomerUser) -> Response:
    form = await read_form(request)
    _ = gettext_of(request)
    return await _command(
        request, dossier_id, form, "confirm", {}, _("Thank you: the resolution is confirmed.")
    )


@router.post("/espace/dossiers/{dossier_id}/rouvrir")
async def reopen(request: Request, dossier_id: uuid.UUID, user: CustomerUser) -> Response:
    form = await read_form(request)
    _ = gettext_of(request)
    reason = field(form, "reason")
    if not reason:
        session_of(request).flash("error", _("Say why the dossier should be reopened."))
        return redirect(f"/espace/dossiers/{dossier_id}#reopen")
    return await _command(
        request, dossier_id, form, "reopen", {"reason": reason}, _("The dossier is reopened.")
    )


@router.post("/espace/dossiers/{dossier_id}/avis")
async def rate(request: Request, dossier_id: uuid.UUID, user: CustomerUser) -> Response:
    """Satisfaction at closure: one rating per closure, kept in the site's own schema."""
    form = await read_form(request)
    _ = gettext_of(request)
    session = session_of(request)
    score = field(form, "score")
    if score not in {"1", "2", "3", "4", "5"}:
        session.flash("error", _("Choose a rating from 1 to 5."))
        return redirect(f"/espace/dossiers/{dossier_id}#rating")
    comment = field(form, "comment")[:5000]
    if not is_clean_text(comment):  # the text policy (issue 11): stored here, so checked here
        session.flash("error", CONTROL_MESSAGE)
        return redirect(f"/espace/dossiers/{dossier_id}#rating")
    dossier = await backend(request).get(f"/api/v1/dossiers/{dossier_id}")
    closed_at = i18n.parse(dossier.get("closed_at"))
    if dossier["status"] != "closed" or closed_at is None:
        raise PageError(409, _("A dossier is rated once it is closed."))
    recorded = await repo.rate(
        request.app.state.pool,
        dossier=dossier,
        closed_at=closed_at,
        score=int(score),
        comment=comment,
        rated_by=uuid.UUID(user.id),
    )
    session.flash(
        "success" if recorded else "error",
        _("Thank you for your rating.") if recorded else _("This closure is already rated."),
    )
    return redirect(f"/espace/dossiers/{dossier_id}")


@router.get("/pieces-jointes/{attachment_id}")
async def download(request: Request, attachment_id: uuid.UUID, user: AnyUser) -> Response:
    """Always a download (never rendered inline), to whoever may read the dossier."""
    found = await repo.get_attachment(request.app.state.pool, attachment_id)
    if found is None:
        raise PageError(404, tr(request, "Not found: it does not exist or is not yours."))
    await backend(request).get(f"/api/v1/dossiers/{found['dossier_id']}")  # 404 if not theirs
    name = found["filename"]
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return Response(
        bytes(found["content"]),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": (
                f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
            ),
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.get("/pieces-jointes/courriel/{attachment_id}")
async def mail_download(request: Request, attachment_id: uuid.UUID, user: AnyUser) -> Response:
    """A file that came with a mail, through the mail intake API with the reader's token (it
    serves technicians, and customers of the dossier's organisation): always a download."""
    content, disposition = await backend(request).download(
        f"/api/v1/mail/attachments/{attachment_id}"
    )
    return Response(
        content,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": disposition,
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )
