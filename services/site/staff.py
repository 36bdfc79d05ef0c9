"""Pages for trainers (appointments and their briefs, R7), developers (the bug board, R8) and
product managers (the backlog, the weekly review agendas and the decisions, R9), over their
services' APIs. A service whose API is not there answers 404: the page says so."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any
from urllib.parse import quote

import nh3
from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from starlette.datastructures import FormData

from assistance.clock import PARIS
from services.site.backend import ApiError
from services.site.i18n import N_
from services.site.web import (
    PageError,
    SiteRoute,
    StaffUser,
    backend,
    field,
    gettext_of,
    once,
    page,
    read_form,
    redirect,
    session_of,
    softwares,
    submission_of,
    tr,
)

router = APIRouter(route_class=SiteRoute, include_in_schema=False)

TRAINING_ROLES = ("trainer", "technician", "admin")
BUG_ROLES = ("developer", "technician", "admin")
EVOLUTION_ROLES = ("product_manager", "project_manager", "technician", "admin")
BUG_STATES = (
    "new",
    "reproduced",
    "not_reproducible",
    "diagnosed",
    "fix_completed",
    "released",
    "duplicate",
)


def _allow(request: Request, user: Any, roles: tuple[str, ...]) -> None:
    if user.role not in roles:
        raise PageError(403, tr(request, "This page is not open to your role."))


async def _maybe(request: Request, path: str, **params: Any) -> tuple[Any, str | None]:
    """The API's answer, or None and what to tell the reader."""
    _ = gettext_of(request)
    try:
        return await backend(request).get(path, **params), None
    except ApiError as exc:
        if exc.status == 404:
            return None, _("This service is not available on this site yet.")
        if exc.status in (400, 422):
            return None, exc.message
        if exc.status >= 500:
            return None, _("This service is unavailable for the moment; try again shortly.")
        raise


def _html(markup: str | None) -> Markup | None:
    """HTML produced by a service from Markdown, cleaned again before it is shown."""
    return Markup(nh3.clean(markup)) if markup else None


# --- trainers (R7, engagement 4) -----------------------------------------------------------


@router.get("/bureau/formation")
async def training(request: Request, user: StaffUser) -> Response:
    _allow(request, user, TRAINING_ROLES)
    mine = user.role == "trainer"
    found, missing = await _maybe(
        request, "/api/v1/training/appointments", mine="true" if mine else None, limit=100
    )
    return page(
        request,
        "staff_training.html",
        title=tr(request, "Training"),
        items=(found or {}).get("items", []),
        missing=missing,
        mine=mine,
        may_act=user.role in ("trainer", "admin"),
    )


def _paris_time(form: FormData) -> str:
    """The new start a trainer typed (a day and an hour, Paris time), for the API."""
    try:
        day = date.fromisoformat(field(form, "day"))
        hour = time.fromisoformat(field(form, "hour"))
    except ValueError:
        return ""
    return datetime.combine(day, hour, PARIS).isoformat()


# What a trainer records on an appointment (R7), through the training API.
APPOINTMENT_ACTIONS: dict[str, tuple[str, Callable[[FormData], dict[str, Any]], str]] = {
    "tenue": (
        "held",
        lambda f: {"notes": field(f, "notes")},
        N_("Training recorded as held: the customer is asked to confirm the resolution."),
    ),
    "absence": (
        "missed",
        lambda f: {"notes": field(f, "notes")},
        N_("Recorded: the customer did not come; a new appointment will be booked."),
    ),
    "deplacer": (
        "reschedule",
        lambda f: {"starts_at": _paris_time(f), "reason": field(f, "reason")},
        N_("Appointment moved: the customer and the trainer get the updated invitation."),
    ),
    "annuler": (
        "cancel",
        lambda f: {"reason": field(f, "reason")},
        N_("Appointment cancelled: the invitation is withdrawn."),
    ),
}


@router.post("/bureau/formation/{appointment_id}/{action}")
async def appointment_action(
    request: Request, appointment_id: uuid.UUID, action: str, user: StaffUser
) -> Response:
    """R7: the trainer says the training was held (with notes) or missed, or moves or cancels
    the appointment; the training API decides, and its refusal is shown as it says it."""
    _allow(request, user, ("trainer", "admin"))
    chosen = APPOINTMENT_ACTIONS.get(action)
    if chosen is None:
        raise PageError(404, tr(request, "Page not found."))
    path, body, done = chosen
    form = await read_form(request)
    session = session_of(request)
    payload = body(form)
    if action == "deplacer" and not payload["starts_at"]:
        session.flash("error", tr(request, "Give the new day and time."))
        return redirect(f"/bureau/formation#rdv-{appointment_id}")
    try:
        await backend(request).post(
            f"/api/v1/training/appointments/{appointment_id}/{path}",
            payload,
            once(submission_of(form)),
        )
    except ApiError as exc:
        if exc.status not in (403, 409, 422):
            raise
        session.flash("error", exc.message)
    else:
        session.flash("success", gettext_of(request)(done))
    return redirect(f"/bureau/formation#rdv-{appointment_id}")


# --- developers (R8) -----------------------------------------------------------------------


@router.get("/bureau/bugs")
async def bugs(request: Request, user: StaffUser) -> Response:
    _allow(request, user, BUG_ROLES)
    state = request.query_params.get("etat", "")
    state = state if state in BUG_STATES else ""
    mine = request.query_params.get("miens") == "1"
    found, missing = await _maybe(
        request, "/api/v1/bugs", state=state or None, mine="true" if mine else None, limit=100
    )
    return page(
        request,
        "staff_bugs.html",
        title=tr(request, "Bugs"),
        items=(found or {}).get("items", []),
        total=(found or {}).get("total", 0),
        missing=missing,
        state=state,
        states=BUG_STATES,
        mine=mine,
    )


@router.get("/bureau/bugs/{bug_id}")
async def bug(request: Request, bug_id: uuid.UUID, user: StaffUser) -> Response:
    _allow(request, user, BUG_ROLES)
    found = await backend(request).get(f"/api/v1/bugs/{bug_id}")
    return page(
        request,
        "staff_bug.html",
        title=found.get("reference", ""),
        b=found,
        may_act=user.role in ("developer", "admin") and found.get("state") != "released",
    )


# What a developer records on a bug (R8), through the bugs API.
BUG_ACTIONS: dict[str, tuple[str, Callable[[FormData], dict[str, Any]], str]] = {
    "prendre": ("claim", lambda _: {}, N_("You now follow this bug.")),
    "reproduit": (
        "reproduced",
        lambda f: {"steps": field(f, "steps"), "environment": field(f, "environment")},
        N_("Reproduction recorded."),
    ),
    "non-reproduit": (
        "not-reproducible",
        lambda f: {"questions": field(f, "questions")},
        N_("Questions sent to the customers."),
    ),
    "diagnostic": (
        "diagnosis",
        lambda f: {"diagnosis": field(f, "diagnosis")},
        N_("Diagnosis recorded."),
    ),
    "correction": (
        "fix-completed",
        lambda f: {
            "version": field(f, "version"),
            "change_reference": field(f, "change_reference"),
            "notes": field(f, "notes"),
        },
        N_("Fix recorded: the customers will be told which version carries it."),
    ),
}


@router.post("/bureau/bugs/{bug_id}/{action}")
async def bug_action(request: Request, bug_id: uuid.UUID, action: str, user: StaffUser) -> Response:
    _allow(request, user, ("developer", "admin"))
    chosen = BUG_ACTIONS.get(action)
    if chosen is None:
        raise PageError(404, tr(request, "Page not found."))
    path, body, done = chosen
    form = await read_form(request)
    session = session_of(request)
    try:
        await backend(request).post(
            f"/api/v1/bugs/{bug_id}/{path}", body(form), once(submission_of(form))
        )
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        session.flash("error", exc.message)
    else:
        session.flash("success", gettext_of(request)(done))
    return redirect(f"/bureau/bugs/{bug_id}")


# --- product managers (R9) -----------------------------------------------------------------


@router.get("/bureau/evolutions")
async def evolutions(request: Request, user: StaffUser) -> Response:
    _allow(request, user, EVOLUTION_ROLES)
    software = request.query_params.get("logiciel", "")[:100] or None
    status = request.query_params.get("etat", "open")
    status = status if status in ("open", "accepted", "rejected", "merged") else "open"
    found, missing = await _maybe(
        request, "/api/v1/evolutions", software=software, status=status, limit=100
    )
    reviews, _missing = await _maybe(request, "/api/v1/reviews", software=software, limit=5)
    return page(
        request,
        "staff_evolutions.html",
        title=tr(request, "Evolutions"),
        items=(found or {}).get("items", []),
        total=(found or {}).get("total", 0),
        reviews=reviews or [],
        missing=missing,
        software=software,
        status=status,
        softwares=await softwares(request),
    )


@router.get("/bureau/evolutions/{evolution_id}")
async def evolution(request: Request, evolution_id: uuid.UUID, user: StaffUser) -> Response:
    _allow(request, user, EVOLUTION_ROLES)
    found = await backend(request).get(f"/api/v1/evolutions/{evolution_id}")
    return page(
        request,
        "staff_evolution.html",
        title=found.get("title", ""),
        e=found,
        specification=_html(found.get("specification_html")),
        may_decide=user.role == "product_manager" and found.get("status") == "open",
    )


@router.post("/bureau/evolutions/{evolution_id}/decision")
async def decide(request: Request, evolution_id: uuid.UUID, user: StaffUser) -> Response:
    """R9: the product manager accepts (with the specification for the IT project manager)
    or rejects (with a reason); the requesters are told and their dossiers close."""
    _allow(request, user, ("product_manager",))
    _ = gettext_of(request)
    form = await read_form(request)
    decision = field(form, "decision")
    body: dict[str, Any] = {"decision": decision, "reason": field(form, "reason") or None}
    if decision == "accepted":
        body["specification"] = field(form, "specification") or None
    session = session_of(request)
    try:
        await backend(request).post(
            f"/api/v1/evolutions/{evolution_id}/decision", body, once(submission_of(form))
        )
    except ApiError as exc:
        if exc.status not in (403, 409, 422):
            raise
        session.flash("error", exc.message)
    else:
        session.flash("success", _("Decision recorded; the requesters are told."))
    return redirect(f"/bureau/evolutions/{evolution_id}")


# --- product managers: releases and their documentation (R11, R12) -------------------------

_SLUG_WORD = re.compile(r"[^a-z0-9]+")


def _slug(text: str) -> str:
    """A page's address from its title, as the API accepts it (lower case, dashes)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _SLUG_WORD.sub("-", ascii_text.lower()).strip("-")[:100].strip("-")


async def _managed(request: Request, user: Any) -> list[dict[str, Any]]:
    """The softwares this product manager manages (the evolutions API says who manages what)."""
    mine = []
    for software in await softwares(request):
        managers = await backend(request).get(
            f"/api/v1/softwares/{software['code']}/product-managers"
        )
        if any(str(m.get("user_id")) == user.id for m in managers):
            mine.append(software)
    return mine


@router.get("/bureau/versions")
async def releases(request: Request, user: StaffUser) -> Response:
    """R11, R12: per software the product manager manages, the versions released with their
    documentation, and the form to declare the next one (its notes, the accepted evolutions it
    carries, its documentation pages)."""
    _allow(request, user, ("product_manager",))
    shown = []
    for software in await _managed(request, user):
        code = str(software["code"])
        released, missing = await _maybe(request, f"/api/v1/softwares/{code}/releases")
        docs, _missing = await _maybe(request, f"/api/v1/docs/{code}")
        accepted, _missing = await _maybe(
            request, "/api/v1/evolutions", software=code, status="accepted", limit=200
        )
        titles = {
            p["slug"]: p["title"] for v in (docs or {}).get("versions", []) for p in v["pages"]
        }
        shown.append(
            {
                "code": code,
                "name": software["name"],
                "releases": sorted(
                    released or [], key=lambda r: str(r["released_at"]), reverse=True
                ),
                "titles": titles,
                "shippable": [
                    e for e in (accepted or {}).get("items", []) if not e.get("shipped_version")
                ],
                "missing": missing,
            }
        )
    return page(request, "staff_releases.html", title=tr(request, "Versions"), softwares=shown)


@router.post("/bureau/versions/{software}")
async def declare_release(request: Request, software: str, user: StaffUser) -> Response:
    """The release is declared through the evolutions API: the version joins the catalogue,
    its documentation is published, the evolutions it carries are announced and their
    requesters told. A refusal is shown as the API words it."""
    _allow(request, user, ("product_manager",))
    _ = gettext_of(request)
    form = await read_form(request)
    session = session_of(request)
    documentation = []
    title, markdown = field(form, "doc_title"), _text_field(form, "doc_markdown")
    if title or markdown.strip():
        slug = field(form, "doc_slug") or _slug(title)
        documentation.append({"slug": slug, "title": title, "markdown": markdown})
    body = {
        "version": field(form, "version"),
        "notes": _text_field(form, "notes"),
        "evolutions": [str(v) for v in form.getlist("evolutions") if isinstance(v, str)],
        "documentation": documentation,
    }
    try:
        answer = await backend(request).post(
            f"/api/v1/softwares/{quote(software, safe='')}/releases",
            body,
            once(submission_of(form)),
        )
    except ApiError as exc:
        if exc.status not in (403, 404, 409, 422):
            raise
        if exc.status in (403, 404):  # not one of theirs: the API's message names a code
            session.flash("error", _("Only a product manager of this software declares it."))
        else:
            session.flash("error", exc.message)
    else:
        session.flash(
            "success",
            _("Version %(version)s declared: its documentation is published.")
            % {"version": answer.body["version"]},
        )
    return redirect("/bureau/versions")


def _text_field(form: FormData, name: str) -> str:
    """A long text as typed (Markdown keeps its leading spaces), line ends made Unix."""
    value = form.get(name)
    return value.replace("\r\n", "\n") if isinstance(value, str) else ""
