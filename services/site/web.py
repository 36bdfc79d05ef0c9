"""The site's HTTP plumbing: sessions, security headers, templates, forms, errors.

Every page route uses `SiteRoute`, which loads the session from its signed cookie, turns
refusals into French pages (or a redirect to sign in), writes the cookie back, and adds the
security headers: a Content-Security-Policy without inline script or style, no framing, no
MIME sniffing, no caching of personal pages.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable, Coroutine
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import asyncpg
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistance import directory, headers
from services.site import i18n, labels
from services.site.backend import IDEMPOTENCY_KEY, Answer, ApiError, Backend
from services.site.i18n import N_
from services.site.sessions import Session, SessionStore, User
from services.site.settings import get_site_settings

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

# The headers every process sends (assistance/headers.py), with the site's own CSP.
SECURITY_HEADERS = {
    **headers.HEADERS,
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
}


class PageError(Exception):
    """A refusal shown as a page: its status and a message fit for a person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SignInRequired(Exception):
    pass


# --- sessions ------------------------------------------------------------------------------


@lru_cache
def _store(secret: str, hours: float) -> SessionStore:
    return SessionStore(secret, int(hours * 3600))


def session_store(request: Request) -> SessionStore:
    settings = get_site_settings()
    secret = (
        settings.session_key
        or hashlib.sha256(
            ("site-session:" + request.app.state.settings.mail_signing_key).encode()
        ).hexdigest()
    )
    return _store(secret, settings.session_hours)


def client_address(request: Request) -> str:
    """The client's address as this process sees it (put the proxy's own address handling in
    front: uvicorn's `--forwarded-allow-ips`)."""
    return request.client.host if request.client else ""


def session_of(request: Request) -> Session:
    return request.state.session  # type: ignore[no-any-return]


def gettext_of(request: Request) -> Callable[[str], str]:
    return i18n.gettext_for(session_of(request).lang)


def tr(request: Request, message: str) -> str:
    """`message` in the reader's language (extracted for the catalogue as `tr:2`)."""
    return i18n.gettext_for(session_of(request).lang)(message)


def backend(request: Request) -> Backend:
    return Backend(request, session_of(request).token)


def signed_in(*roles: str) -> Callable[[Request], Coroutine[Any, Any, User]]:
    """A dependency: the signed-in user, holding one of `roles` if any are named."""

    async def check(request: Request) -> User:
        session = session_of(request)
        if session.user is None or session.token is None:
            raise SignInRequired()
        if roles and session.user.role not in roles:
            raise PageError(403, tr(request, "This page is not open to your role."))
        return session.user

    return check


AnyUser = Annotated[User, Depends(signed_in())]
CustomerUser = Annotated[User, Depends(signed_in("customer"))]
StaffUser = Annotated[
    User,
    Depends(
        signed_in(
            "technician", "admin", "trainer", "developer", "product_manager", "project_manager"
        )
    ),
]
TechnicianUser = Annotated[User, Depends(signed_in("technician", "admin"))]


# --- the route class -----------------------------------------------------------------------


class SiteRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            store = session_store(request)
            session = store.read(request)
            request.state.session = session
            await refresh_software_names(request)
            try:
                if session.sid is not None:  # an anonymous visit reads no session
                    await store.resolve(request.app.state.pool, session)
            except (OSError, asyncpg.PostgresError, TimeoutError):  # R13: pages still answer
                log.warning("sessions unreadable: %s served signed out", request.url.path)
                session.user = session.token = None
            try:
                response = await handler(request)
            except SignInRequired:
                response = to_sign_in(request)
            except PageError as exc:
                response = error_page(request, exc.status, exc.message)
            except ApiError as exc:
                response = api_error_page(request, exc)
            except RequestValidationError:
                response = error_page(request, 404, tr(request, "Page not found."))
            except StarletteHTTPException as exc:
                response = error_page(request, exc.status_code, str(exc.detail))
            except Exception:  # noqa: BLE001 - logged; the reader gets a page, not a trace
                log.exception("site page %s failed", request.url.path)
                response = error_page(
                    request, 503, tr(request, "The site met a problem; try again shortly.")
                )
            if session.modified:
                store.write(request, response, session)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return run


def to_sign_in(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":  # back to the page the form was on, once signed in
        referer = urlsplit(request.headers.get("referer", ""))
        target = referer.path if referer.netloc == request.url.netloc else "/"
    return redirect(f"/connexion?suite={quote(target, safe='/')}")


def api_error_page(request: Request, exc: ApiError) -> Response:
    _ = gettext_of(request)
    if exc.status == 401:
        session_of(request).sign_out()
        session_of(request).flash("error", _("Your session has ended: please sign in again."))
        return to_sign_in(request)
    if exc.status == 403:
        return error_page(request, 403, _("This page is not open to your role."))
    if exc.status == 404:
        return error_page(request, 404, _("Not found: it does not exist or is not yours."))
    return error_page(request, exc.status if exc.status >= 500 else 400, exc.message)


def error_page(request: Request, status: int, message: str) -> Response:
    return page(request, "error.html", http_status=status, message=message, status_code=status)


MESSAGES_BY_STATUS = {
    404: N_("This page does not exist. Check the address, or start again from the home page."),
    403: N_("This page is not open to your role."),
    405: N_("This page does not exist. Check the address, or start again from the home page."),
}


def unrouted_error_page(request: Request, status: int) -> Response:
    """The French page for an error no site page handled (an unknown URL): registered with
    `assistance.web.html_error_page`."""
    request.state.session = session_store(request).read(request)
    message = MESSAGES_BY_STATUS.get(status, N_("The site met a problem; try again shortly."))
    response = error_page(request, status, tr(request, message))
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# --- rendering -----------------------------------------------------------------------------


@lru_cache
def environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    _ = i18n.gettext_for(lang)
    env.filters.update(
        when=lambda v: i18n.when(v, lang),
        stamp=lambda v: i18n.stamp(v, lang),
        day=lambda v: i18n.day(v, lang),
        duration=lambda v: i18n.duration(v, lang),
        decimal=lambda v: i18n.decimal(v, lang),
        status=lambda v: _(labels.STATUS.get(v, v or "")),
        status_staff=lambda v: _(labels.STATUS_STAFF.get(v, v or "")),
        kind=lambda v: _(labels.KIND.get(v or "", v or "")),
        channel=lambda v: _(labels.CHANNEL.get(v, v or "")),
        role=lambda v: _(labels.ROLE.get(v, v or "")),
        entry=lambda v: _(labels.ENTRY.get(v, v or "")),
        appointment=lambda v: _(labels.APPOINTMENT.get(v, v or "")),
        evolution=lambda v: _(labels.EVOLUTION.get(v, v or "")),
        bug_state=lambda v: _(labels.BUG_STATE.get(v, v or "")),
        bug_event=lambda v: _(labels.BUG_EVENT.get(v, v or "")),
        waiting_for=lambda v: _(labels.WAITING_FOR.get(v, v or "")),
        evolution_event=lambda v: _(labels.EVOLUTION_EVENT.get(v, v or "")),
        quarantine_reason=lambda v: _(labels.QUARANTINE_REASON.get(v, labels.OTHER_REASON)),
        quarantine_status=lambda v: _(labels.QUARANTINE_STATUS.get(v, v or "")),
        dmarc=lambda v: _(labels.DMARC.get(v or "", labels.DMARC_OTHER)),
        software=lambda v: SOFTWARE_NAMES.get(v, v or ""),
        entry_text=lambda v: _entry_text(v, _),
        filesize=_filesize,
        http_url=_http_url,
    )
    env.globals["new_submission"] = new_submission
    return env


def _http_url(value: Any) -> str:
    """A link to show: http(s) only, never `javascript:` or the like."""
    text = str(value or "")
    return text if text.startswith(("https://", "http://")) else "#"


# Software names by code, for the pages (a code is never shown to a person): refreshed by
# every site page at most once a minute.
SOFTWARE_NAMES: dict[str, str] = {}
_names_read_at = [-1e9]
_EVOLUTION_STEP = re.compile(r"^Demande d'évolution : ([a-z_]+)\.$")


async def refresh_software_names(request: Request) -> None:
    if time.monotonic() - _names_read_at[0] < 60:
        return
    try:
        rows = await directory.list_softwares(request.app.state.pool)
    except Exception:  # noqa: BLE001 - names are a nicety; the page shows the code meanwhile
        log.warning("software names unavailable", exc_info=True)
        return
    SOFTWARE_NAMES.clear()
    SOFTWARE_NAMES.update({str(row["code"]): str(row["name"]) for row in rows})
    _names_read_at[0] = time.monotonic()


def _entry_text(text: str, _: Callable[[str], str]) -> str:
    """A timeline text, with the evolution step the dossier heard worded (not its code)."""
    step = _EVOLUTION_STEP.match(text or "")
    if step and step.group(1) in labels.EVOLUTION_EVENT:
        return _("Evolution request: %(step)s.") % {
            "step": _(labels.EVOLUTION_EVENT[step.group(1)]).lower()
        }
    return text


def _filesize(n: int) -> str:
    if n < 1024:
        return f"{n} o"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} Ko"
    return f"{n / 1024 / 1024:.1f} Mo"


TITLES = {
    "deposit.html": N_("Deposit a request"),
    "deposited.html": N_("Request received"),
    "docs_index.html": N_("Documentation"),
    "announcements.html": N_("What's new"),
    "signin.html": N_("Sign in"),
    "office_queue.html": N_("Queue"),
    "office_search.html": N_("Search"),
    "office_call.html": N_("Log a phone call"),
    "office_dashboard.html": N_("Dashboard"),
    "office_operations.html": N_("Stuck work"),
    "staff_training.html": N_("Training appointments"),
    "staff_bugs.html": N_("Bugs"),
    "staff_evolutions.html": N_("Evolution requests"),
}
ERROR_TITLES = {
    404: N_("Page not found"),
    403: N_("Access refused"),
    500: N_("Temporarily unavailable"),
}


def _title(template: str, context: dict[str, Any], _: Callable[[str], str]) -> str:
    """The page's own <title>, when its handler did not give one."""
    if template == "error.html":
        status = int(context.get("status_code") or 500)
        return _(ERROR_TITLES.get(status if status < 500 else 500, N_("Something went wrong")))
    if template in ("docs_software.html", "docs_page.html"):
        doc = context.get("doc") or {}
        named = doc.get("title") if isinstance(doc, dict) else None
        return " — ".join(str(p) for p in (named, context.get("name"), _("Documentation")) if p)
    return _(TITLES[template]) if template in TITLES else ""


def page(request: Request, template: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    session = session_of(request)
    calendar = request.app.state.calendar
    if not context.get("title"):  # every page its own <title> (issue 14)
        context["title"] = _title(template, context, i18n.gettext_for(session.lang))
    html = (
        environment(session.lang)
        .get_template(template)
        .render(
            user=session.user,
            csrf=session.csrf,
            lang=session.lang,
            flashes=session.take_flashes(),
            path=request.url.path,
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            opening=i18n.opening_periods(calendar, session.lang),
            # R3: « 4 heures », worded from the one commitment (assistance/commitment.py)
            first_response_delay=request.app.state.settings.commitment().short_delay_text(
                session.lang
            ),
            **{"submission": None, **context},
        )
    )
    return HTMLResponse(html, status_code=http_status)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def local_path(target: str | None, default: str = "/") -> str:
    """A path on this site only (never another host): for `?suite=` after signing in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


async def softwares(request: Request) -> list[dict[str, Any]]:
    """The softwares and their versions, from the directory (the shared package's module)."""
    return await directory.list_softwares(request.app.state.pool)


# --- forms ---------------------------------------------------------------------------------


async def read_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's (every form has one)."""
    settings = get_site_settings()
    try:
        form = await request.form(max_files=settings.max_attachments + 1, max_fields=50)
    except Exception:  # noqa: BLE001 - a malformed or oversized form is refused politely
        raise PageError(400, tr(request, "This form could not be read.")) from None
    if not session_of(request).csrf_ok(_text(form.get("csrf"))):
        raise PageError(
            403,
            tr(
                request,
                "This form has expired (or was not sent from this site): reload the page and "
                "try again.",
            ),
        )
    return form


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def field(form: FormData, name: str) -> str:
    """A text field, stripped; files and absent fields read as ''."""
    return _text(form.get(name)).strip()


# --- one effect per form (docs/decisions/0012) ---------------------------------------------

SUBMISSION_FIELD = "envoi"  # written by `csrf_field()` beside the form token
_SUBMISSION = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
PENDING = N_("Your action has been received; the dossier will take it into account in a moment.")


def new_submission() -> str:
    """A fresh key for one rendered form: sent again with it (a double click, the browser
    sending it again, a reload after a lost answer), the form acts once."""
    return secrets.token_urlsafe(16)


def submission_of(form: FormData, name: str = SUBMISSION_FIELD) -> str:
    """The submission key the form carries ('' if none: a page rendered before forms carried
    one; the deposit and the phone call had their own field, `key`)."""
    key = field(form, name)
    return key if _SUBMISSION.match(key) else ""


def once(key: str) -> dict[str, str]:
    """The headers of the API write a form makes: its submission key as `Idempotency-Key`,
    so that a twin of the form replays the first answer (no second entry, no second mail)."""
    return {IDEMPOTENCY_KEY: f"site-{key}"} if key else {}


def refused(exc: ApiError) -> bool:
    """The API refused the form for sure (a 4xx, not a twin still running): the form shown
    again for correction is another submission, with a key of its own. Otherwise (5xx, no
    answer) it keeps its key: sent again, it still acts once."""
    return exc.status < 500 and exc.code != "idempotency_in_flight"


def flash_outcome(request: Request, answer: Answer, done: str) -> None:
    """What the reader is told once the API took their action: `done` when it is applied;
    while a dossier command is pending (202), that it is received, never that it is done."""
    if answer.pending:
        session_of(request).flash("info", tr(request, PENDING))
    else:
        session_of(request).flash("success", done)
