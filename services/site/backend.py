"""How the site talks to the system: the services' HTTP APIs, with the signed-in user's token.

In the embedded default the calls stay inside this process (`httpx.ASGITransport` on the same
app); with `SITE_API_URL` set they go over HTTP to that address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request

from assistance.web import IN_PROCESS_SITE, SITE_VISITOR
from services.site import i18n, labels
from services.site.settings import get_site_settings


class ApiError(Exception):
    """A refusal or a failure of an API, with the message it gave (fit to show a person)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


UNAVAILABLE = "Le service est momentanément indisponible ; réessayez dans un instant."
IDEMPOTENCY_KEY = "Idempotency-Key"  # the API's header (assistance/idempotency.py)


@dataclass(frozen=True)
class Answer:
    """An API's successful answer: its status and its body."""

    status: int
    body: Any

    @property
    def pending(self) -> bool:
        """202: the dossier's workflow has not answered the command yet (docs/decisions/0012);
        it is not shown as done."""
        return self.status == 202


class Backend:
    def __init__(self, request: Request, token: str | None) -> None:
        self.request = request
        self.token = token

    def _client(self) -> httpx.AsyncClient:
        settings = get_site_settings()
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        timeout = httpx.Timeout(settings.api_timeout_seconds)
        if settings.api_url:
            return httpx.AsyncClient(base_url=settings.api_url, headers=headers, timeout=timeout)
        transport = httpx.ASGITransport(
            app=self.request.app, raise_app_exceptions=False, client=(IN_PROCESS_SITE, 0)
        )
        # the audit records who read what from where: the visitor's address, not this process
        headers[SITE_VISITOR] = self.request.client.host if self.request.client else ""
        return httpx.AsyncClient(
            transport=transport, base_url="http://site.internal", headers=headers, timeout=timeout
        )

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            async with self._client() as client:
                response = await client.request(
                    method, path, params=clean, json=json, headers=headers
                )
        except httpx.HTTPError:
            raise ApiError(503, "unavailable", UNAVAILABLE) from None
        if not response.is_success:
            raise _worded(_error(response), self.request)
        body: Any = None
        if response.status_code != 204 and response.content:
            json_body = "json" in response.headers.get("content-type", "")
            body = response.json() if json_body else response.text
        return Answer(response.status_code, body)

    async def download(self, path: str) -> tuple[bytes, str]:
        """A file an API serves (its bytes and its Content-Disposition), or its refusal.

        A 303 See Other to the same API (the service that decides sends to the one that holds
        the file, with a short-lived grant: decision 0019, addendum) is followed, once; one to
        anywhere else is not (the API is unavailable, as far as the site can tell)."""
        try:
            async with self._client() as client:
                response = await client.get(path)
                if response.status_code == 303:
                    target = _within(client.base_url, response)
                    if target is None:
                        raise ApiError(502, "unavailable", UNAVAILABLE)
                    response = await client.get(target)
        except httpx.HTTPError:
            raise ApiError(503, "unavailable", UNAVAILABLE) from None
        if not response.is_success:
            raise _worded(_error(response), self.request)
        return response.content, response.headers.get("content-disposition", "attachment")

    async def get(self, path: str, **params: Any) -> Any:
        return (await self.call("GET", path, params=params)).body

    async def post(
        self, path: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        """A write; its answer says whether it is applied (`pending` for a 202)."""
        return await self.call("POST", path, json=json if json is not None else {}, headers=headers)


def _within(base: httpx.URL, redirect: httpx.Response) -> httpx.URL | None:
    """Where a redirect of the API sends, if that is the same API (same scheme, host and port,
    under its base path); None otherwise, or when it says nowhere."""
    location = redirect.headers.get("location")
    if not location:
        return None
    try:
        target = redirect.url.join(location)
    except httpx.InvalidURL:
        return None
    same_origin = (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port)
    return target if same_origin and target.path.startswith(base.path) else None


def _worded(error: ApiError, request: Request) -> ApiError:
    """The refusal with its field named in words, never by its code (issue 14):
    « resolution : Ce champ est obligatoire. » becomes « Résolution : Ce champ est obligatoire. »"""
    field = error.field
    if not field or not error.message.startswith(f"{field} : "):
        return error
    session = getattr(request.state, "session", None)
    _ = i18n.gettext_for(session.lang if session is not None else "fr")
    explanation = error.message[len(field) + 3 :]
    label = labels.FIELD.get(field)
    error.message = f"{_(label)} : {explanation}" if label else explanation
    return error


def _error(response: httpx.Response) -> ApiError:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    message = error.get("message") or (
        UNAVAILABLE if response.status_code >= 500 else f"HTTP {response.status_code}"
    )
    return ApiError(
        response.status_code, error.get("code") or "error", str(message), error.get("field")
    )
