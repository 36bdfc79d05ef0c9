"""The same security headers on every response (issue 13): errors, 404, static files, feeds,
`/docs` (local assets only) and `/openapi.json`; `/dev/mails` never outside `make run`."""

from __future__ import annotations

import re

import httpx

from assistance.apidocs import DOCS_CSP
from assistance.headers import HEADERS, STRICT_CSP
from tests.helpers import deposit_body

COMMON = {k: v for k, v in HEADERS.items() if k != "Content-Security-Policy"}


def _secured(r: httpx.Response, csp: str | None = STRICT_CSP) -> None:
    for name, value in COMMON.items():
        assert r.headers.get(name) == value, (r.request.url, name, r.headers.get(name))
    if csp is not None:
        assert r.headers["content-security-policy"] == csp, r.request.url
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


async def test_every_kind_of_response_carries_the_headers(http: httpx.AsyncClient) -> None:
    page_404 = await http.get("/nulle-part")  # a French page: the site's CSP (its styles)
    assert page_404.status_code == 404
    _secured(page_404, csp=None)
    answers = {
        "404": await http.get("/api/v1/nulle-part/encore"),
        "api 404": await http.get("/api/v1/nulle-part"),
        "401": await http.get("/api/v1/queue"),
        "405": await http.put("/healthz"),
        "422": await http.post("/api/v1/requests", json=deposit_body(subject="")),
        "openapi": await http.get("/openapi.json"),
        "feed": await http.get("/feeds/manao-compta.atom"),
        "static": await http.get("/static/site/site.js"),
        "health": await http.get("/healthz"),
    }
    assert answers["404"].status_code == 404 and answers["401"].status_code == 401
    assert answers["422"].status_code == 422 and answers["405"].status_code == 405
    assert answers["feed"].status_code == 200 and answers["static"].status_code == 200
    for name, r in answers.items():
        _secured(r)
        assert r.status_code < 500, name
    site = await http.get("/deposer")  # the site's pages keep their own, wider CSP
    _secured(site, csp=None)
    assert "script-src 'self'" in site.headers["content-security-policy"]


async def test_docs_come_from_local_assets_only(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200
    _secured(page, csp=DOCS_CSP)
    assert "http" not in DOCS_CSP and "cdn" not in page.text.lower()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs/") for s in sources), sources
    for source in sources:
        r = await http.get(source)
        assert r.status_code == 200, source
        _secured(r)
    assert (await http.get("/redoc")).status_code == 404  # it would load from a CDN


async def test_the_dev_mail_pages_are_not_served_by_the_system(http: httpx.AsyncClient) -> None:
    for path in ("/dev/mails", "/dev/mails.json", "/dev/mails/1"):
        assert (await http.get(path)).status_code == 404
