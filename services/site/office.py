"""The back office: the queue in treatment order (R4, R3), a dossier with every lifecycle
action (R2, R5–R10), search across open and archived dossiers (R10), phone calls (R1)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from services.site import attached, repo
from services.site.backend import Answer, ApiError
from services.site.i18n import N_
from services.site.portal import PAGE_SIZE, page_number
from services.site.public import HOME_OF_ROLE
from services.site.uploads import UploadRefused, read_uploads
from services.site.web import (
    PageError,
    SiteRoute,
    StaffUser,
    TechnicianUser,
    backend,
    field,
    flash_outcome,
    gettext_of,
    new_submission,
    once,
    page,
    read_form,
    redirect,
    refused,
    session_of,
    softwares,
    submission_of,
    tr,
)

router = APIRouter(route_class=SiteRoute, include_in_schema=False)

KINDS = ("usage", "advanced_usage", "bug", "evolution")
STATUSES = ("new", "in_progress", "waiting_customer", "waiting_service", "resolved", "closed")


@router.get("/bureau")
async def office_home(request: Request, user: StaffUser) -> Response:
    return redirect("/bureau/file" if user.is_technician else HOME_OF_ROLE[user.role])


# The queue's filters and sorts (issue 14): what the page's form says, and what the API is
# asked. Saved for the user (site.preferences) when chosen, used again on their next visit.
QUEUE_VIEW = "queue"
WHO = {"moi": "me", "libres": "none"}
SORTS = ("ordre", "echeance", "recents")
OPEN_STATUSES = tuple(s for s in STATUSES if s != "closed")


def _queue_view(params: Any, software_codes: set[str]) -> dict[str, str]:
    """The choices of the queue's form, each kept only if it is a known value."""
    view = {
        "technicien": str(params.get("technicien", "")),
        "logiciel": str(params.get("logiciel", "")),
        "etat": str(params.get("etat", "")),
        "tri": str(params.get("tri", "")),
    }
    if view["technicien"] not in WHO:
        view["technicien"] = ""
    if view["logiciel"] not in software_codes:
        view["logiciel"] = ""
    if view["etat"] not in OPEN_STATUSES:
        view["etat"] = ""
    if view["tri"] not in SORTS:
        view["tri"] = "ordre"
    return view


def _sorted(items: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """The queue in treatment order (R4, the API's), by the nearest first-response deadline
    (answered ones last), or newest first; each keeps its position in treatment order."""
    if sort == "echeance":
        return sorted(
            items,
            key=lambda d: (
                d["business_minutes_left"] is None,
                d["business_minutes_left"] or 0,
                d["position"],
            ),
        )
    if sort == "recents":
        return sorted(items, key=lambda d: (d["received_at"], -d["position"]), reverse=True)
    return items


QUEUE_SHOWN = 500  # the head of the queue a technician works from (the API's largest page)


@router.get("/bureau/file")
async def queue(request: Request, user: TechnicianUser) -> Response:
    """R4: weekend deposits first on Monday morning, then first come, first served; filtered
    (mine, unassigned, software, state) and sorted as the technician chose last time."""
    pool = request.app.state.pool
    known = await softwares(request)
    codes = {str(s["code"]) for s in known}
    user_id = uuid.UUID(user.id)
    saved = await repo.preference(pool, user_id, QUEUE_VIEW)
    if "vue" in request.query_params:  # the form was sent: these choices, saved if new
        view = _queue_view(request.query_params, codes)
        if view != saved:  # the page refreshes itself every 30 s: no write each time
            await repo.save_preference(pool, user_id, QUEUE_VIEW, view)
    else:
        view = _queue_view(saved, codes)
    found = await backend(request).get(
        "/api/v1/queue",
        technician=WHO.get(view["technicien"]),
        software=view["logiciel"] or None,
        status=view["etat"] or None,
        limit=QUEUE_SHOWN,
    )
    return page(
        request,
        "office_queue.html",
        title=tr(request, "Queue"),
        items=_sorted(found["items"], view["tri"]),
        total=found["total"],
        me=user.id,
        view=view,
        filtered=any(view[k] for k in ("technicien", "logiciel", "etat")),
        softwares=known,
        statuses=OPEN_STATUSES,
    )


@router.get("/bureau/dossiers/{dossier_id}")
async def dossier(request: Request, dossier_id: uuid.UUID, user: TechnicianUser) -> Response:
    d = await backend(request).get(f"/api/v1/dossiers/{dossier_id}")
    technician = d.get("technician") or {}
    timeline, others = attached.place(
        d["timeline"], await repo.list_attachments(request.app.state.pool, dossier_id)
    )
    return page(
        request,
        "office_dossier.html",
        title=d["reference"],
        d=d,
        entries=timeline,
        details=d.get("details") or {},
        mine=str(technician.get("id") or "") == user.id,
        attachments=others,
        kinds=KINDS,
    )


# --- lifecycle actions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    path: str  # the dossier API's command
    body: Callable[[FormData], dict[str, Any]]
    done: str  # what the technician reads once it is done
    anchor: str = ""


def _text(name: str) -> Callable[[FormData], dict[str, Any]]:
    return lambda form: {name: field(form, name)}


def _diagnosis(form: FormData) -> dict[str, Any]:
    return {
        "kind": field(form, "kind"),
        "context": field(form, "context"),
        "need": field(form, "need"),
        "version": field(form, "version") or None,
    }


def _workaround(form: FormData) -> dict[str, Any]:
    if field(form, "none"):
        return {"none_reason": field(form, "text")}
    return {"text": field(form, "text")}


ACTIONS: dict[str, Action] = {
    "prendre": Action("take", lambda _: {}, N_("You now follow this dossier.")),
    "rendre": Action("release", lambda _: {}, N_("The dossier is back in the queue.")),
    "diagnostic": Action("diagnosis", _diagnosis, N_("Diagnosis recorded."), "#diagnosis"),
    "repondre": Action("responses", _text("text"), N_("Answer sent to the customer."), "#respond"),
    "note": Action("notes", _text("text"), N_("Note added."), "#note"),
    "information": Action(
        "information-requests", _text("text"), N_("Question sent to the customer."), "#ask"
    ),
    "partage-ecran": Action(
        "screen-share", lambda _: {}, N_("Screen-sharing link sent to the customer.")
    ),
    "contournement": Action("workaround", _workaround, N_("Workaround recorded."), "#workaround"),
    "clore": Action("close", _text("resolution"), N_("Dossier closed."), "#close"),
    "rouvrir": Action("reopen", _text("reason"), N_("Dossier reopened."), "#reopen"),
}


@router.post("/bureau/dossiers/{dossier_id}/{action}")
async def act(
    request: Request, dossier_id: uuid.UUID, action: str, user: TechnicianUser
) -> Response:
    """One lifecycle command through the dossier API; a refusal says why, in French."""
    _ = gettext_of(request)
    chosen = ACTIONS.get(action)
    if chosen is None:
        raise PageError(404, _("Page not found."))
    form = await read_form(request)
    session = session_of(request)
    submission = submission_of(form)
    back = f"/bureau/dossiers/{dossier_id}"
    uploads = []
    if action == "repondre":
        try:
            uploads = await read_uploads(form, "files", _)
        except UploadRefused as exc:
            session.flash("error", exc.message)
            return redirect(back + chosen.anchor)
    try:
        answer = await backend(request).post(
            f"/api/v1/dossiers/{dossier_id}/{chosen.path}", chosen.body(form), once(submission)
        )
    except ApiError as exc:
        if exc.status not in (409, 422, 503):
            raise
        session.flash("error", exc.message)
        return redirect(back + chosen.anchor)
    if uploads:
        await repo.add_attachments(
            request.app.state.pool,
            dossier_id,
            uploads,
            uuid.UUID(user.id),
            user.name,
            submission,
            _entry_of(answer, field(form, "text")),
        )
    flash_outcome(request, answer, _(chosen.done))
    return redirect(back)


def _entry_of(answer: Answer, text: str) -> datetime | None:
    """The time of the timeline entry the reply wrote, when the API's answer shows it."""
    if answer.pending or not isinstance(answer.body, dict):
        return None
    return attached.entry_for(answer.body.get("timeline") or [], text)


# --- search (R10) and phone calls (R1) -----------------------------------------------------


@router.get("/bureau/recherche")
async def search(request: Request, user: TechnicianUser) -> Response:
    """R10: open and archived dossiers, accents and case aside (decision 0023)."""
    q = request.query_params.get("q", "").strip()[:200]
    status = request.query_params.get("statut", "")
    status = status if status in STATUSES else ""
    known = await softwares(request)
    software = request.query_params.get("logiciel", "")
    software = software if software in {str(s["code"]) for s in known} else ""
    number = page_number(request)
    found = await backend(request).get(
        "/api/v1/dossiers",
        q=q or None,
        status=status or None,
        software=software or None,
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    return page(
        request,
        "office_search.html",
        title=tr(request, "Search"),
        items=found["items"],
        total=found["total"],
        q=q,
        status=status,
        statuses=STATUSES,
        software=software,
        softwares=known,
        page_no=number,
        pages=max(1, math.ceil(found["total"] / PAGE_SIZE)),
    )


@router.get("/bureau/appel")
async def call_form(request: Request, user: TechnicianUser) -> Response:
    return page(
        request,
        "office_call.html",
        title=tr(request, "Log a phone call"),
        softwares=await softwares(request),
        values={},
        errors={},
    )


@router.post("/bureau/appel")
async def log_call(request: Request, user: TechnicianUser) -> Response:
    """R1: the technician who took the call logs it; the call is the first response."""
    _ = gettext_of(request)
    form = await read_form(request)
    names = ("name", "email", "phone", "software", "subject", "description")
    values = {k: field(form, k) for k in names}
    key = submission_of(form) or submission_of(form, "key") or new_submission()
    errors = {k: _("This field is required.") for k in names if not values[k]}
    if not errors:
        body = {
            "requester": {"email": values["email"], "name": values["name"]},
            "caller_phone": values["phone"],
            "software": values["software"],
            "subject": values["subject"],
            "description": values["description"],
        }
        try:
            answer = await backend(request).post("/api/v1/calls", body, once(key))
        except ApiError as exc:
            if exc.status not in (409, 422, 503):
                raise
            if refused(exc):
                key = ""
            mapping = {
                "requester.email": "email",
                "requester.name": "name",
                "caller_phone": "phone",
            }
            errors[mapping.get(exc.field or "", exc.field or "form")] = exc.message
        else:
            session_of(request).flash(
                "success", _("Call logged: dossier %(ref)s.") % {"ref": answer.body["reference"]}
            )
            return redirect("/bureau/file")
    return page(
        request,
        "office_call.html",
        http_status=422,
        title=_("Log a phone call"),
        softwares=await softwares(request),
        values=values,
        errors=errors,
        submission=key,
    )


# --- the mail quarantine (R1): what could not become a dossier, decided by a technician ----

NOT_A_REQUEST = N_(
    "This mail cannot become a request as it is: choose the software and give a subject."
)
QUARANTINE_STATES = {"a-traiter": "pending", "liberes": "released", "ecartes": "discarded"}


@router.get("/bureau/quarantaine")
async def quarantine(request: Request, user: TechnicianUser) -> Response:
    """The mails set aside, newest first: why (in words), from whom, about what, when."""
    state = request.query_params.get("etat", "a-traiter")
    state = state if state in QUARANTINE_STATES else "a-traiter"
    items = await backend(request).get(
        "/api/v1/mail/quarantine", status=QUARANTINE_STATES[state], limit=100
    )
    return page(
        request,
        "office_quarantine.html",
        title=tr(request, "Mail quarantine"),
        items=items,
        state=state,
        states=QUARANTINE_STATES,
    )


@router.get("/bureau/quarantaine/{mail_id}")
async def quarantined_mail(request: Request, mail_id: uuid.UUID, user: TechnicianUser) -> Response:
    mail = await backend(request).get(f"/api/v1/mail/quarantine/{mail_id}")
    return page(
        request,
        "office_quarantined.html",
        title=mail.get("subject") or tr(request, "Mail quarantine"),
        m=mail,
        q=mail["quarantine"],
        softwares=await softwares(request),
    )


@router.post("/bureau/quarantaine/{mail_id}/{action}")
async def decide_quarantined(
    request: Request, mail_id: uuid.UUID, action: str, user: TechnicianUser
) -> Response:
    """Release the mail into a new dossier or an existing one, or discard it, through the mail
    intake API; a refusal is shown as the API words it."""
    _ = gettext_of(request)
    form = await read_form(request)
    back = f"/bureau/quarantaine/{mail_id}"
    if action == "ouvrir":
        path, body = "release", {"action": "open", "software": field(form, "software") or None}
        if field(form, "subject"):
            body["subject"] = field(form, "subject")
    elif action == "rattacher":
        path, body = "release", {"action": "attach", "reference": field(form, "reference")}
    elif action == "ecarter":
        path, body = "discard", {"reason": field(form, "reason")}
    else:
        raise PageError(404, _("Page not found."))
    session = session_of(request)
    try:
        answer = await backend(request).post(
            f"/api/v1/mail/quarantine/{mail_id}/{path}", body, once(submission_of(form))
        )
    except ApiError as exc:
        if exc.status not in (404, 409, 422):
            raise
        if exc.status == 404 and exc.code == "dossier_not_found":
            session.flash("error", _("No dossier has this reference."))
        elif exc.code == "invalid_request":  # the API's detail names its fields in English
            session.flash("error", _(NOT_A_REQUEST))
        elif exc.status == 404:
            raise
        else:
            session.flash("error", exc.message)
        return redirect(back)
    result = answer.body
    if result["action"] == "discarded":
        session.flash("success", _("Mail discarded: no dossier, no answer."))
        return redirect("/bureau/quarantaine")
    done = (
        _("Mail released: dossier %(ref)s opened.")
        if result["action"] == "opened"
        else _("Mail released: it joins dossier %(ref)s.")
    )
    session.flash("success", done % {"ref": result["reference"]})
    return redirect(f"/bureau/dossiers/{result['dossier_id']}")
