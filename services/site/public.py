"""Public pages, open 24/7 without signing in (R1, R11–R13): home, deposit, documentation,
announcements; signing in and out; the language."""

from __future__ import annotations

import contextlib
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import nh3
from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from assistance import audit, directory
from assistance.web import download_headers
from services.site import attached, i18n, limits, repo, sign_in_links
from services.site.backend import ApiError
from services.site.repo import add_attachments
from services.site.sessions import User
from services.site.uploads import UploadRefused, read_uploads
from services.site.web import (
    PageError,
    SiteRoute,
    backend,
    client_address,
    error_page,
    field,
    gettext_of,
    local_path,
    new_submission,
    once,
    page,
    read_form,
    redirect,
    refused,
    session_of,
    session_store,
    softwares,
    submission_of,
    tr,
)

router = APIRouter(route_class=SiteRoute, include_in_schema=False)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Where each role lands after signing in.
HOME_OF_ROLE = {
    "customer": "/espace",
    "technician": "/bureau",
    "admin": "/bureau",
    "trainer": "/bureau/formation",
    "developer": "/bureau/bugs",
    "product_manager": "/bureau/evolutions",
    "project_manager": "/bureau/evolutions",
}


@router.get("/")
async def home(request: Request) -> Response:
    """R13: the opening hours and whether the centre is open now; the four engagements."""
    calendar = request.app.state.calendar
    now = datetime.now(UTC)
    is_open = calendar.is_open(now)
    return page(
        request,
        "home.html",
        is_open=is_open,
        reopens=None if is_open else calendar.next_opening(now),
    )


# --- deposit (R1, R13) ---------------------------------------------------------------------


@router.get("/deposer")
async def deposit_form(request: Request) -> Response:
    user = session_of(request).user
    values = {"name": "", "email": "", "software": "", "subject": "", "description": ""}
    if user is not None and user.is_customer:
        values.update(name=user.name, email=user.email)
    values["software"] = request.query_params.get("logiciel", "")
    return page(
        request,
        "deposit.html",
        softwares=await softwares(request),
        values=values,
        errors={},
    )


@router.post("/deposer")
async def deposit(request: Request) -> Response:
    """Posts to the intake API, which answers once the request is committed: this works while
    Temporal or NATS are down (R13)."""
    _ = gettext_of(request)
    form = await read_form(request)
    session = session_of(request)
    values = {k: field(form, k) for k in ("name", "email", "software", "subject", "description")}
    key = submission_of(form) or submission_of(form, "key") or new_submission()
    errors: dict[str, str] = {}
    required = {
        "name": _("Give your name."),
        "email": _("Give your e-mail address: the answers are sent there."),
        "software": _("Choose the software concerned."),
        "subject": _("Give a subject."),
        "description": _("Describe your request."),
    }
    for name, message in required.items():
        if not values[name]:
            errors[name] = message
    if values["email"] and not _EMAIL.match(values["email"]):
        errors["email"] = _("This e-mail address does not look valid.")
    uploads = []
    try:
        uploads = await read_uploads(form, "files", _)
    except UploadRefused as exc:
        errors["files"] = exc.message
    answer = None
    if not errors:
        body = {
            "requester": {"email": values["email"], "name": values["name"]},
            "software": values["software"],
            "subject": values["subject"],
            "description": values["description"],
        }
        try:
            answer = (await backend(request).post("/api/v1/requests", body, once(key))).body
        except ApiError as exc:
            if exc.status == 401:  # a stale session: deposit anonymously instead
                session.sign_out()
                answer = (await backend(request).post("/api/v1/requests", body, once(key))).body
            else:
                errors[_api_field(exc.field)] = exc.message
                if refused(exc):
                    key = ""
    if answer is None:
        return page(
            request,
            "deposit.html",
            http_status=422,
            softwares=await softwares(request),
            values=values,
            errors=errors,
            submission=key,
        )
    attached = True
    if uploads:
        user = session.user
        try:
            await add_attachments(
                request.app.state.pool,
                uuid.UUID(answer["id"]),
                uploads,
                uuid.UUID(user.id) if user else None,
                user.name if user else values["name"],
                key,
            )
        except Exception:  # noqa: BLE001 - the request itself is recorded; say so
            attached = False
    return page(request, "deposited.html", answer=answer, attached=attached, count=len(uploads))


def _api_field(name: str | None) -> str:
    mapping = {"requester.email": "email", "requester.name": "name"}
    return mapping.get(name or "", name or "form")


# --- documentation (R11) and announcements (R12) --------------------------------------------


@router.get("/documentation")
async def documentation(request: Request) -> Response:
    return page(request, "docs_index.html", softwares=await softwares(request))


@router.get("/documentation/{software}")
async def software_docs(request: Request, software: str) -> Response:
    index, missing = await _maybe(request, f"/api/v1/docs/{software}")
    return page(
        request,
        "docs_software.html",
        software=software,
        name=await _software_name(request, software),
        index=index,
        missing=missing,
    )


@router.get("/documentation/{software}/{version}/{slug}")
async def doc_page(request: Request, software: str, version: str, slug: str) -> Response:
    doc, missing = await _maybe(request, f"/api/v1/docs/{software}/{version}/{slug}")
    html = nh3.clean(doc.get("html", "")) if doc else ""  # sanitised again here
    body = Markup(html) if doc else None
    return page(
        request,
        "docs_page.html",
        software=software,
        name=await _software_name(request, software),
        doc=doc,
        body=body,
        titled=html.lstrip().startswith("<h1"),  # the page brings its own title
        missing=missing,
    )


@router.get("/annonces")
async def announcements(request: Request) -> Response:
    software = request.query_params.get("logiciel") or None
    found, missing = await _maybe(request, "/api/v1/announcements", software=software)
    return page(
        request,
        "announcements.html",
        softwares=await softwares(request),
        software=software,
        items=(found or {}).get("items", []),
        missing=missing,
    )


async def _maybe(request: Request, path: str, **params: Any) -> tuple[Any, str | None]:
    """An API answer, or None and why not: these APIs may not be there yet (404), or be down."""
    _ = gettext_of(request)
    try:
        return await backend(request).get(path, **params), None
    except ApiError as exc:
        if exc.status == 404:
            return None, _("Nothing is published here yet.")
        if exc.status in (401, 403):
            return None, _("This content is not public.")
        return None, _("This content is unavailable for the moment; try again shortly.")


async def _software_name(request: Request, code: str) -> str:
    for software in await softwares(request):
        if software["code"] == code:
            return str(software["name"])
    return code


# --- signing in and out, language ----------------------------------------------------------


@router.get("/connexion")
async def sign_in_form(request: Request) -> Response:
    return page(
        request,
        "signin.html",
        values={"email": ""},
        error=None,
        next=local_path(request.query_params.get("suite"), ""),
    )


def _user_of(found: directory.Principal) -> User:
    assert found.role is not None
    return User(
        id=str(found.user_id),
        name=found.name,
        email=found.email,
        role=found.role.value,
        organisation_id=str(found.organisation_id) if found.organisation_id else None,
    )


@router.post("/connexion")
async def sign_in(request: Request) -> Response:
    """E-mail and API token (given by the centre); the token is checked by the directory."""
    form = await read_form(request)
    email, token = field(form, "email").lower(), field(form, "token")
    target = local_path(field(form, "next"), "")
    pool, client = request.app.state.pool, client_address(request)
    try:
        await limits.check(pool, email, client)
    except limits.Limited as limited:
        return _limited(request, limited, "signin.html", values={"email": email}, next=target)
    found = await directory.authenticate(pool, token) if token else None
    if found is None or found.email.lower() != email or found.role is None:
        await limits.record(pool, email, client)
        await audit.record(pool, audit.Actor(None, email), "sign_in.failed", email, client)
        return page(
            request,
            "signin.html",
            http_status=400,
            values={"email": email},
            error=tr(request, "Unknown e-mail address or token."),
            next=target,
        )
    user = _user_of(found)
    session = session_of(request)
    await _open_session(request, user)
    session.flash("success", tr(request, "Welcome, %(name)s.") % {"name": user.name})
    return redirect(target or HOME_OF_ROLE.get(user.role, "/"))


def _limited(request: Request, limited: limits.Limited, template: str, **context: Any) -> Response:
    """429 with the French message and `Retry-After` (issue 13)."""
    minutes = limited.minutes
    message = (
        tr(request, "Too many sign-in attempts: for your security, try again in %(n)s minute.")
        if minutes == 1
        else tr(
            request, "Too many sign-in attempts: for your security, try again in %(n)s minutes."
        )
    ) % {"n": minutes}
    answer = page(request, template, http_status=429, error=message, **context)
    answer.headers["Retry-After"] = str(limited.retry_after)
    return answer


async def _open_session(request: Request, user: User, how: str = "token") -> None:
    """A server-side session: the cookie gets only its random id (issue 13); audited."""
    await audit.record(
        request.app.state.pool,
        audit.Actor(uuid.UUID(user.id), user.email, user.role),
        "sign_in",
        user.email,
        client_address(request),
        method=how,
    )
    await session_store(request).open(
        request.app.state.pool,
        session_of(request),
        user,
        client_address(request),
        request.headers.get("user-agent", ""),
    )


@router.post("/connexion/lien")
async def ask_sign_in_link(request: Request) -> Response:
    """Sign-in by mail: a single-use link to a known address; the same answer either way."""
    form = await read_form(request)
    email = field(form, "email").lower()
    pool, client = request.app.state.pool, client_address(request)
    try:
        await limits.check(pool, email, client)
    except limits.Limited as limited:
        return _limited(request, limited, "signin.html", values={"email": email}, next="")
    await limits.record(pool, email, client)
    if email:
        await sign_in_links.send_link(
            pool, request.app.state.settings, email, str(request.base_url).rstrip("/")
        )
    if email and await directory.principal_by_email(pool, email) is None:
        # issue 14: a requester without an account gets a follow link to each of their dossiers
        with contextlib.suppress(ApiError):
            await backend(request).post(
                "/api/v1/follow-links", {"email": email}, once(submission_of(form))
            )
    session_of(request).flash(
        "success",
        tr(
            request,
            "If this address has an account or dossiers, a link has just been sent to it.",
        ),
    )
    return redirect("/connexion")


async def _followed(request: Request, token: str) -> dict[str, Any] | None:
    """The dossier a follow link opens, as its customer sees it; None if the link is not valid."""
    try:
        found: dict[str, Any] = await backend(request).get(f"/api/v1/follow/{_token(token)}")
    except ApiError as exc:
        if exc.status != 404:
            raise
        return None
    return found


def _token(token: str) -> str:
    return quote(token[:100], safe="")


def _not_followed(request: Request) -> Response:
    message = tr(request, "This follow link is not valid any more (expired or revoked).")
    return error_page(request, 404, message)


@router.get("/suivi/{token}")
async def followed_dossier(request: Request, token: str) -> Response:
    """Issue 14: a dossier followed from the requester's personal link, without an account,
    each message with its files, downloaded through the same link."""
    dossier = await _followed(request, token)
    if dossier is None:
        return _not_followed(request)
    uploads = await repo.list_attachments(request.app.state.pool, uuid.UUID(dossier["id"]))
    entries, others = attached.place(
        dossier["timeline"], uploads, f"/suivi/{_token(token)}/pieces-jointes"
    )
    return page(
        request,
        "follow.html",
        d=dossier,
        entries=entries,
        attachments=others,
        title=dossier["reference"],
    )


@router.get("/suivi/{token}/pieces-jointes/{attachment_id}")
async def followed_upload(request: Request, token: str, attachment_id: uuid.UUID) -> Response:
    """A file posted on the site with a message of the followed dossier (every such message
    is one its customer reads); a file of another dossier is not found."""
    dossier = await _followed(request, token)
    if dossier is None:
        return _not_followed(request)
    found = await repo.get_attachment(request.app.state.pool, attachment_id)
    if found is None or str(found["dossier_id"]) != str(dossier["id"]):
        raise PageError(404, tr(request, "Not found: it does not exist or is not yours."))
    return Response(
        bytes(found["content"]),
        media_type="application/octet-stream",
        headers=download_headers(found["filename"]),
    )


@router.get("/suivi/{token}/pieces-jointes/courriel/{attachment_id}")
async def followed_mail_file(request: Request, token: str, attachment_id: uuid.UUID) -> Response:
    """A file of a mail of the followed dossier: the dossier API checks the link and sends to
    mail intake's download with a grant for that file alone (the backend follows it)."""
    try:
        content, disposition = await backend(request).download(
            f"/api/v1/follow/{_token(token)}/attachments/{attachment_id}"
        )
    except ApiError as exc:
        if exc.status != 404:
            raise
        raise PageError(404, tr(request, "Not found: it does not exist or is not yours.")) from None
    return Response(
        content,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": disposition,
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.get("/connexion/lien/{secret}")
async def follow_sign_in_link(request: Request, secret: str) -> Response:
    redeemed = await sign_in_links.redeem(request.app.state.pool, secret[:200])
    if redeemed is None:
        session_of(request).flash(
            "error", tr(request, "This sign-in link is invalid, used or expired.")
        )
        return redirect("/connexion")
    user = _user_of(redeemed)
    session = session_of(request)
    await _open_session(request, user, "mail_link")
    session.flash("success", tr(request, "Welcome, %(name)s.") % {"name": user.name})
    return redirect(HOME_OF_ROLE.get(user.role, "/"))


@router.post("/deconnexion")
async def sign_out(request: Request) -> Response:
    await read_form(request)
    session = session_of(request)
    await session_store(request).close(request.app.state.pool, session)
    session.sign_out()
    session.flash("success", tr(request, "You are signed out."))
    return redirect("/")


@router.get("/langue/{lang}")
async def language(request: Request, lang: str) -> Response:
    session_of(request).set_lang(i18n.pick(lang))
    return redirect(local_path(request.query_params.get("suite")))
