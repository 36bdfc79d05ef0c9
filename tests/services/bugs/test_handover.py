"""The hand-over from the dossier workflow (docs/contracts.md §1) and technicians' links:
one bug, many dossiers (R8)."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from assistance.bus import Bus
from assistance.directory import Role
from tests.helpers import auth, eventually
from tests.services.bugs.support import (
    bug_events,
    hand_over,
    new_bug,
    order,
    publish,
    settled,
    software,
)


async def test_a_handover_records_one_bug_per_dossier_and_attempt(
    http: httpx.AsyncClient, system, bus: Bus, pool: asyncpg.Pool
) -> None:
    code = software()
    body = order(software=code, version="5.2.1", subject="Lettrage bloqué")
    first = await hand_over(bus, body)
    again = await hand_over(bus, body)

    assert first["ok"] is True and first["created"] is True
    assert again == first  # idempotent on (dossier_id, attempt)
    assert first["reference"].startswith("B-")
    staff = auth(system.tokens[Role.technician])
    bug = (await http.get(f"/api/v1/bugs/{first['bug_id']}", headers=staff)).json()
    assert bug["state"] == "new"
    assert bug["software"] == code
    assert bug["title"] == "Lettrage bloqué"
    assert bug["affected_versions"] == ["5.2.1"]
    assert [d["dossier_id"] for d in bug["dossiers"]] == [body["dossier_id"]]
    assert bug["dossiers"][0]["reference"] == body["reference"]
    assert [w["text"] for w in bug["workarounds"]] == ["Exporter par trimestre."]
    await settled(pool)
    reported = await bug_events(bus, first["bug_id"])
    assert [e.type for e in reported] == ["bugs.bug.reported"]
    assert reported[0].id == f"{first['bug_id']}:1"
    assert reported[0].data["dossier_ids"] == [body["dossier_id"]]


async def test_a_malformed_handover_is_refused_with_a_reason(bus: Bus) -> None:
    body = order()
    del body["dossier_id"]
    answer = await hand_over(bus, body)
    assert answer == {"ok": False, "error": "invalid hand-over: dossier_id: Field required"}


async def test_a_technician_links_a_dossier_to_a_known_bug(
    http: httpx.AsyncClient, system, bus: Bus, pool: asyncpg.Pool
) -> None:
    code = software()
    known, first_dossier = await new_bug(bus, software=code)
    twin, second_dossier = await new_bug(bus, software=code, version="5.1")
    tech = auth(system.tokens[Role.technician])

    linked = await http.post(
        f"/api/v1/bugs/{known}/dossiers", headers=tech, json={"dossier_id": second_dossier}
    )
    assert linked.status_code == 200, linked.text
    assert [d["dossier_id"] for d in linked.json()["dossiers"]] == [first_dossier, second_dossier]
    assert linked.json()["dossiers"][1]["via"] == "technician"
    # the bug the dossier left has nothing left: a duplicate of the known one
    left = (await http.get(f"/api/v1/bugs/{twin}", headers=tech)).json()
    assert left["state"] == "duplicate" and left["duplicate_of"] == known
    # linking again changes nothing
    again = await http.post(
        f"/api/v1/bugs/{known}/dossiers", headers=tech, json={"dossier_id": second_dossier}
    )
    assert again.status_code == 200
    assert again.json()["dossier_count"] == 2
    await settled(pool)
    events = await bug_events(bus, known)
    assert [(e.type, e.data["dossier_ids"]) for e in events] == [
        ("bugs.bug.reported", [first_dossier]),
        ("bugs.bug.linked", [second_dossier]),
    ]
    # nobody works on a duplicate; nobody links to one
    refused = await http.post(
        f"/api/v1/bugs/{twin}/dossiers", headers=tech, json={"dossier_id": first_dossier}
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "bug_duplicate"


async def test_a_handover_naming_a_known_bug_joins_it(
    http: httpx.AsyncClient, system, bus: Bus
) -> None:
    known, first_dossier = await new_bug(bus, software=software())
    body = order(bug_id=known, version="5.1")
    answer = await hand_over(bus, body)
    assert answer == {
        "ok": True,
        "bug_id": known,
        "reference": answer["reference"],
        "created": False,
    }
    bug = (
        await http.get(f"/api/v1/bugs/{known}", headers=auth(system.tokens[Role.developer]))
    ).json()
    assert bug["dossier_count"] == 2
    assert bug["affected_versions"] == ["5.2", "5.1"]


async def test_linking_waits_for_the_workaround_gate(
    http: httpx.AsyncClient, system, bus: Bus
) -> None:
    """R8: a dossier reaches the developers only once its workaround (or the reason there
    is none) is recorded; the service learns it from the DOSSIER stream or the hand-over."""
    known, _ = await new_bug(bus, software=software())
    tech = auth(system.tokens[Role.technician])
    dossier_id = str(uuid.uuid4())
    path = f"/api/v1/bugs/{known}/dossiers"

    refused = await http.post(path, headers=tech, json={"dossier_id": dossier_id})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "workaround_first"
    assert refused.json()["error"]["field"] == "dossier_id"

    await publish(
        bus,
        "dossier.dossier.workaround_unavailable",
        {
            "dossier_id": dossier_id,
            "reference": "D-2026-777777",
            "seq": 9,
            "set": {"kind": "bug", "details": {"workaround_none_reason": "Aucun autre chemin"}},
        },
    )

    async def accepted() -> httpx.Response | None:
        r = await http.post(path, headers=tech, json={"dossier_id": dossier_id})
        return r if r.status_code == 200 else None

    linked = await eventually(accepted, timeout=10, every=0.2)
    assert linked.json()["dossier_count"] == 2


async def test_bad_requests_are_clear_4xx(http: httpx.AsyncClient, system) -> None:
    dev = auth(system.tokens[Role.developer])
    tech = auth(system.tokens[Role.technician])
    missing = "00000000-0000-0000-0000-000000000000"
    cases = [
        (http.get("/api/v1/bugs/not-a-uuid", headers=dev), 422, "bug_id"),
        (http.get(f"/api/v1/bugs/{missing}", headers=dev), 404, None),
        (http.post(f"/api/v1/bugs/{missing}/claim", headers=dev), 404, None),
        (http.get("/api/v1/bugs?state=lost", headers=dev), 422, "state"),
        (http.post(f"/api/v1/bugs/{missing}/dossiers", headers=tech, json={}), 422, "dossier_id"),
        (http.post(f"/api/v1/bugs/{missing}/claim", headers=tech), 403, None),
        (http.get("/api/v1/bugs", headers=auth(system.tokens[Role.customer])), 403, None),
        (http.get("/api/v1/bugs"), 401, None),
    ]
    for call, status, field in cases:
        r = await call
        assert r.status_code == status, r.text
        assert r.json()["error"]["field"] == field


async def test_no_input_gets_a_5xx(http: httpx.AsyncClient, system, bus: Bus) -> None:
    bug_id, dossier_id = await new_bug(bus, software=software())
    dev = auth(system.tokens[Role.developer])
    tech = auth(system.tokens[Role.technician])
    nul = "a\x00b"
    reads = [
        "/api/v1/bugs?q=%00",
        "/api/v1/bugs?software=a%00b",
        "/api/v1/bugs?q=" + "x" * 5000,
        "/api/v1/bugs?offset=100000000000000000000000",
        "/api/v1/bugs?limit=-1",
        "/api/v1/workarounds?q=%00x&version=%00",
        "/api/v1/workarounds?q=%22%27%26%7C%21(",
    ]
    for url in reads:
        r = await http.get(url, headers=dev)
        assert r.status_code in (200, 422), (url, r.status_code, r.text)
    writes = [
        ("fix-completed", dev, {"version": "5.3", "change_reference": nul, "notes": ""}),
        ("fix-completed", dev, {"version": "5.3", "change_reference": "x", "notes": nul}),
        ("fix-completed", dev, {"version": 5.3, "change_reference": "x"}),
        ("fix-completed", dev, {"version": "5" * 51, "change_reference": "x"}),
        ("reproduced", dev, {"steps": nul, "environment": "x"}),
        ("reproduced", dev, {"steps": "x", "environment": "x", "affected_versions": "5.2"}),
        ("not-reproducible", dev, {"questions": nul}),
        ("diagnosis", dev, {"diagnosis": "x" * 20_001}),
        ("dossiers", tech, {"dossier_id": dossier_id, "reference": nul}),
        ("dossiers", tech, {"dossier_id": "pas-un-uuid"}),
    ]
    for path, headers, body in writes:
        r = await http.post(f"/api/v1/bugs/{bug_id}/{path}", headers=headers, json=body)
        assert r.status_code == 422, (path, body, r.status_code, r.text)
        assert r.json()["error"]["field"], (path, body)
    r = await http.post(
        f"/api/v1/bugs/{bug_id}/claim", headers={**dev, "Idempotency-Key": "k" * 201}
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "Idempotency-Key"
