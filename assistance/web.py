"""HTTP plumbing every service shares: error shape, who is calling (idempotent writes:
assistance/idempotency.py)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import quote

import asyncpg
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistance import boundary, directory
from assistance.directory import ANONYMOUS, Principal, Role
from assistance.errors import DomainError, Forbidden, TooManyRequests, Unauthorized

log = logging.getLogger(__name__)

# The site registers how it shows an error on a page outside the API (a French HTML page for an
# unknown URL, issue 14); /api/ paths and callers that do not ask for HTML keep the JSON error.
html_error_page: Callable[[Request, int], Response] | None = None

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer <token>`")


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        headers = (
            {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
        )
        return JSONResponse(
            error_body(exc.code, exc.message, exc.field), status_code=exc.status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # French, with the field named (issue 11): pydantic's English never reaches a person
        code, message, field = boundary.explain(exc.errors())
        return JSONResponse(error_body(code, message, field), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if html_error_page is not None and _wants_a_page(request):
            return html_error_page(request, exc.status_code)
        if boundary.unreadable_body(request, exc.status_code, exc.detail):
            code, message = boundary.UNREADABLE_BODY
            return JSONResponse(error_body(code, message), status_code=422)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = boundary.http_message(exc.status_code, exc.detail)
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse(
            error_body("unavailable", "Le service est momentanément indisponible, réessayez."),
            status_code=503,
        )


def _wants_a_page(request: Request) -> bool:
    path = request.url.path
    return (
        request.method in ("GET", "HEAD")
        and not path.startswith("/api/")
        and path != "/api"
        and "text/html" in request.headers.get("accept", "")
    )


def pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool  # type: ignore[no-any-return]


PoolDep = Annotated[asyncpg.Pool, Depends(pool)]


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        return ANONYMOUS
    found = await directory.authenticate(pool(request), credentials.credentials)
    if found is None:
        raise Unauthorized("invalid_token", "Jeton d'accès inconnu ou révoqué.")
    return found


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only these roles (every endpoint says who may call it)."""

    async def check(who: PrincipalDep) -> Principal:
        if who.anonymous:
            raise Unauthorized("unauthenticated", "Authentification requise (jeton Bearer).")
        if who.role not in roles:
            raise Forbidden("forbidden", "Votre rôle ne permet pas cette action.")
        return who

    return check


# Who may call an endpoint: every role set any service admits, defined here once and named for
# its members (a service never names its own: `Staff` used to mean three different sets).
Anyone = Annotated[Principal, Depends(require(*Role))]
AnyStaff = Annotated[Principal, Depends(require(*sorted(directory.STAFF)))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
Customer = Annotated[Principal, Depends(require(Role.customer))]
Trainer = Annotated[Principal, Depends(require(Role.trainer))]
ProductManager = Annotated[Principal, Depends(require(Role.product_manager))]
TechnicianOrAdmin = Annotated[Principal, Depends(require(Role.technician, Role.admin))]
DeveloperOrAdmin = Annotated[Principal, Depends(require(Role.developer, Role.admin))]
TrainerOrAdmin = Annotated[Principal, Depends(require(Role.trainer, Role.admin))]
# the customer's own dossiers, and the technicians who follow them
CustomerTechnicianOrAdmin = Annotated[
    Principal, Depends(require(Role.technician, Role.admin, Role.customer))
]
# bugs: the technicians who hand them over, the developers who fix them
TechnicianDeveloperOrAdmin = Annotated[
    Principal, Depends(require(Role.technician, Role.developer, Role.admin))
]
# evolutions: the technicians who record and group requests, the product managers who decide
TechnicianProductManagerOrAdmin = Annotated[
    Principal, Depends(require(Role.technician, Role.product_manager, Role.admin))
]
# training: the trainers, and the technicians who book for a dossier
TrainerTechnicianOrAdmin = Annotated[
    Principal, Depends(require(Role.trainer, Role.technician, Role.admin))
]


# The refusals an endpoint documents (its OpenAPI `responses`), built by `refusals`.
Refusals = dict[int | str, dict[str, Any]]
INVALID = "Demande invalide : `error.field` nomme le champ fautif"


def refusals(
    more: dict[int, str] | None = None,
    *,
    unauthenticated: str = "Jeton invalide",
    forbidden: str = "Rôle non autorisé",
) -> Refusals:
    """401 and 403, which every endpoint with a role set may answer, then `more` (status →
    what it means here), in that order."""
    documented: Refusals = {
        401: {"description": unauthenticated},
        403: {"description": forbidden},
    }
    documented.update({status: {"description": text} for status, text in (more or {}).items()})
    return documented


# The client address of the site's calls made inside the same process (services/site/backend.py
# sets it; no socket can give it): the site limits its visitors itself.
IN_PROCESS_SITE = "site.internal"


# The header in which the site, calling inside its own process, names its visitor's address.
SITE_VISITOR = "Site-Visitor"


def from_site(request: Request) -> bool:
    """A call the site made inside this process (limited per visitor by the site itself)."""
    return request.client is not None and request.client.host == IN_PROCESS_SITE


def client_of(request: Request) -> str:
    """The caller's address (the audit's « from where »): the socket's peer, or for the site's
    calls inside this process the visitor's address it names (« 203.0.113.5 (site) »). The
    header is read only there: no outside caller can give it."""
    host = request.client.host if request.client else ""
    if host == IN_PROCESS_SITE:
        visitor = request.headers.get(SITE_VISITOR, "")[:64]
        return f"{visitor} (site)" if visitor else host
    return host


def body_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def download_headers(filename: str) -> dict[str, str]:
    """A stored file served as a download, never rendered: its name (ASCII fallback and
    UTF-8), no sniffing, a sandbox, no cache."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename)
    return {
        "Content-Disposition": f'attachment; filename="{fallback}"; '
        f"filename*=UTF-8''{quote(filename, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    }
