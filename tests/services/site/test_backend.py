"""The site's API client follows a redirect only within the same API (decision 0019, addendum):
pure, no servers."""

from __future__ import annotations

import httpx
import pytest

from services.site.backend import _within

ASKED = "/api/v1/follow/abc/attachments/1"


def _redirect(base: str, location: str | None) -> httpx.Response:
    headers = {"Location": location} if location is not None else {}
    request = httpx.Request("GET", httpx.URL(base).join(ASKED))
    return httpx.Response(303, headers=headers, request=request)


@pytest.mark.parametrize(
    ("base", "location", "expected"),
    [
        (
            "http://site.internal",
            "/api/v1/mail/attachments/1/granted?acces=a.b",
            "http://site.internal/api/v1/mail/attachments/1/granted?acces=a.b",
        ),
        (
            "http://api:8000",
            "granted?acces=a.b",
            "http://api:8000/api/v1/follow/abc/attachments/granted?acces=a.b",
        ),
        ("http://api:8000", "http://api:8000/api/v1/x", "http://api:8000/api/v1/x"),
    ],
)
def test_a_redirect_within_the_api_is_followed(base: str, location: str, expected: str) -> None:
    client = httpx.AsyncClient(base_url=base)
    assert _within(client.base_url, _redirect(base, location)) == httpx.URL(expected)


@pytest.mark.parametrize(
    ("base", "location"),
    [
        ("http://site.internal", "https://ailleurs.example/fichier"),
        ("http://site.internal", "//ailleurs.example/fichier"),
        ("http://api:8000", "https://api:8000/api/v1/x"),  # another scheme
        ("http://api:8000", "http://api:8001/api/v1/x"),  # another port
        ("http://api:8000/assistance", "/api/v1/x"),  # outside the API's base path
        ("http://api:8000/assistance", "/assistance/../autre"),
        ("http://api:8000", ""),
        ("http://api:8000", None),
    ],
)
def test_a_redirect_elsewhere_is_not(base: str, location: str | None) -> None:
    client = httpx.AsyncClient(base_url=base)
    assert _within(client.base_url, _redirect(base, location)) is None
