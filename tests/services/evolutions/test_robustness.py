"""No input yields a 5xx: odd bodies, odd paths, odd queries are 4xx with a readable error."""

from __future__ import annotations

import uuid

import httpx
from nats.aio.client import Client as NATS

from assistance.directory import Role
from tests.helpers import auth
from tests.services.evolutions.support import hand_over, hand_over_order


async def test_odd_input_is_a_4xx_never_a_5xx(
    http: httpx.AsyncClient, system, nc: NATS, software: str
) -> None:
    ids = await hand_over(nc, hand_over_order(software, need="avec\x00nul"))
    assert ids["ok"] is True  # NUL characters from the workflow are dropped
    pm = auth(system.tokens[Role.product_manager])
    tech = auth(system.tokens[Role.technician])
    decision = f"/api/v1/evolutions/{ids['evolution_id']}/decision"
    releases = f"/api/v1/softwares/{software}/releases"
    posts: list[tuple[str, dict, object]] = [
        (decision, pm, {"decision": "rejected", "reason": "a\x00b"}),
        (decision, pm, {"decision": "accepted", "specification": ["liste"]}),
        (decision, pm, []),
        (decision, pm, {"decision": None}),
        (releases, pm, {"version": "1.0\x00"}),
        (releases, pm, {"version": "1.0", "notes": 10**400}),
        (releases, pm, {"version": "1.0", "evolutions": ["pas-un-id"]}),
        (releases, pm, {"version": "1.0", "documentation": [{"slug": "a"}]}),
        (
            releases,
            pm,
            {
                "version": "1.0",
                "documentation": [
                    {"slug": "a", "title": "A", "markdown": "x"},
                    {"slug": "a", "title": "B", "markdown": "y"},
                ],
            },
        ),
        (f"/api/v1/evolutions/{ids['evolution_id']}/group", tech, {"evolutions": []}),
        (f"/api/v1/evolutions/{ids['evolution_id']}/group", tech, {"title": "\x00"}),
        ("/api/v1/softwares/%00/releases", pm, {"version": "1.0"}),
        ("/api/v1/softwares/..%2F../releases", pm, {"version": "1.0"}),
    ]
    for url, headers, body in posts:
        r = await http.post(url, headers=headers, json=body)
        assert 400 <= r.status_code < 500, (url, body, r.status_code, r.text)
        assert r.json()["error"]["message"], (url, body)
    gets = [
        "/api/v1/announcements?software=%00",
        "/api/v1/announcements?week=2026-W00",
        "/api/v1/announcements?weeks=0",
        f"/api/v1/docs/{software}/%00/page",
        f"/api/v1/docs/{software}/latest/%C3%A9t%C3%A9",
        "/api/v1/docs/" + "x" * 500,
        "/feeds/%00.atom",
        f"/api/v1/evolutions?software={software}&status=bidon",
        f"/api/v1/evolutions/{uuid.uuid4()}",
        "/api/v1/reviews/pas-un-id",
    ]
    for url in gets:
        r = await http.get(url, headers=tech)
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text)
    nul = await http.post(decision, headers=pm, json={"decision": "rejected", "reason": "a\x00b"})
    assert nul.json()["error"]["field"] == "reason"
