"""The developers' API (R8), `POST /api/v1/bugs/{id}/fix-completed` above all (API.md):
the steps in order, and a duplicate call has one effect and gets the same answer."""

from __future__ import annotations

import asyncpg
import httpx

from assistance import directory
from assistance.bus import Bus
from assistance.directory import Role
from tests.helpers import auth
from tests.services.bugs.support import bug_events, develop, new_bug, settled, software

FIX = {"version": "5.3", "change_reference": "MR !4242", "notes": "Pagination corrigée."}


async def test_duplicate_fix_completed_calls_have_one_effect(
    http: httpx.AsyncClient, system, bus: Bus, pool: asyncpg.Pool
) -> None:
    bug_id, _ = await new_bug(bus, software=software())
    await develop(http, system.tokens, bug_id, upto="diagnosis")
    dev = auth(system.tokens[Role.developer])
    path = f"/api/v1/bugs/{bug_id}/fix-completed"

    first = await http.post(path, headers=dev, json=FIX)
    second = await http.post(path, headers=dev, json=FIX)

    assert first.status_code == 200, first.text
    assert second.status_code == 200
    assert second.json() == first.json()
    answer = first.json()
    assert answer["bug_id"] == bug_id
    assert (answer["version"], answer["change_reference"], answer["notes"]) == (
        "5.3",
        "MR !4242",
        "Pagination corrigée.",
    )
    assert answer["completed_by"] == "David Développeur"
    bug = (await http.get(f"/api/v1/bugs/{bug_id}", headers=dev)).json()
    assert bug["state"] == "fix_completed" and bug["fix_version"] == "5.3"
    assert [h["kind"] for h in bug["history"]] == [
        "reported",
        "reproduced",
        "diagnosed",
        "fix_completed",
    ]
    await settled(pool)
    fixed = await bug_events(bus, bug_id, "fix_completed")
    assert len(fixed) == 1
    assert fixed[0].data["version"] == "5.3"
    assert fixed[0].data["change_reference"] == "MR !4242"


async def test_an_idempotency_key_replays_the_first_answer(
    http: httpx.AsyncClient, system, bus: Bus, pool: asyncpg.Pool
) -> None:
    bug_id, _ = await new_bug(bus, software=software())
    await develop(http, system.tokens, bug_id, upto="diagnosis")
    ci = {**auth(system.tokens[Role.developer]), "Idempotency-Key": "ci-run-8812"}
    path = f"/api/v1/bugs/{bug_id}/fix-completed"

    first = await http.post(path, headers=ci, json=FIX)
    replay = await http.post(path, headers=ci, json=FIX)
    reused = await http.post(path, headers=ci, json={**FIX, "version": "5.4"})

    assert first.status_code == replay.status_code == 200
    assert replay.json() == first.json()
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert reused.json()["error"]["field"] == "Idempotency-Key"
    # without the key, another version is refused: the fix is signalled once (issue 13)
    amended = await http.post(
        path, headers=auth(system.tokens[Role.developer]), json={**FIX, "version": "5.4"}
    )
    assert amended.status_code == 409
    assert amended.json()["error"]["code"] == "fix_already_completed"
    # the same version again (another change reference) answers the fix as recorded
    again = await http.post(
        path, headers=auth(system.tokens[Role.developer]), json={**FIX, "notes": "Autre note."}
    )
    assert again.status_code == 200 and again.json() == first.json()
    await settled(pool)
    versions = [e.data["version"] for e in await bug_events(bus, bug_id, "fix_completed")]
    assert versions == ["5.3"]


async def test_only_the_developer_holding_the_bug_or_an_admin_signals_the_fix(
    http: httpx.AsyncClient, system, bus: Bus, pool: asyncpg.Pool
) -> None:
    bug_id, _ = await new_bug(bus, software=software())
    await develop(http, system.tokens, bug_id, upto="diagnosis")
    path = f"/api/v1/bugs/{bug_id}/fix-completed"
    other = await directory.create_user(pool, "dev3@manao.eu", "Dora Dev", Role.developer)
    r = await http.post(path, headers=auth(await directory.issue_token(pool, other)), json=FIX)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "not_your_bug"
    assert "David Développeur" in r.json()["error"]["message"]
    r = await http.post(path, headers=auth(system.tokens[Role.admin]), json=FIX)
    assert r.status_code == 200 and r.json()["version"] == "5.3"


async def test_the_steps_come_in_order(
    http: httpx.AsyncClient, system, bus: Bus, pool: asyncpg.Pool
) -> None:
    bug_id, _ = await new_bug(bus, software=software())
    dev = auth(system.tokens[Role.developer])
    base = f"/api/v1/bugs/{bug_id}"

    async def refused(path: str, body: dict | None, code: str) -> None:
        r = await http.post(f"{base}/{path}", headers=dev, json=body)
        assert r.status_code == 409, (path, r.text)
        assert r.json()["error"]["code"] == code
        assert r.json()["error"]["message"]

    r = await http.post(f"{base}/fix-completed", headers=dev, json=FIX)
    assert r.status_code == 403 and r.json()["error"]["code"] == "bug_not_claimed"
    await refused("diagnosis", {"diagnosis": "Cause"}, "not_reproduced")
    claimed = await http.post(f"{base}/claim", headers=dev)
    assert claimed.json()["developer"]["name"] == "David Développeur"
    await refused("fix-completed", FIX, "not_diagnosed")
    await develop(http, system.tokens, bug_id, upto="reproduced")
    await refused("not-reproducible", {"questions": "Quelle version ?"}, "already_reproduced")
    # a second developer may not take over; an admin may step in
    other = await directory.create_user(pool, "dev2@manao.eu", "Denise Dev", Role.developer)
    second = auth(await directory.issue_token(pool, other, "test"))
    r = await http.post(f"{base}/diagnosis", headers=second, json={"diagnosis": "Cause"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "claimed_by_another"
    assert "David Développeur" in r.json()["error"]["message"]
    r = await http.post(f"{base}/claim", headers=second)
    assert r.status_code == 409 and r.json()["error"]["code"] == "claimed_by_another"
    admin = auth(system.tokens[Role.admin])
    r = await http.post(f"{base}/diagnosis", headers=admin, json={"diagnosis": "Cause"})
    assert r.status_code == 200 and r.json()["state"] == "diagnosed"


async def test_bad_bodies_are_422_with_the_field(http: httpx.AsyncClient, system, bus: Bus) -> None:
    bug_id, _ = await new_bug(bus, software=software())
    dev = auth(system.tokens[Role.developer])
    path = f"/api/v1/bugs/{bug_id}/fix-completed"
    cases = [
        ({**FIX, "version": ""}, "version"),
        ({**FIX, "version": "5.3 finale"}, "version"),
        ({**FIX, "change_reference": "   "}, "change_reference"),
        ({k: v for k, v in FIX.items() if k != "version"}, "version"),
        ({**FIX, "extra": 1}, "extra"),
        (["5.3"], None),
    ]
    for body, field in cases:
        r = await http.post(path, headers=dev, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["field"] == field, body
    r = await http.post(path, headers=dev, content=b"{not json", timeout=5)
    assert r.status_code == 422
    r = await http.post(
        f"/api/v1/bugs/{bug_id}/reproduced", headers=dev, json={"steps": "x", "environment": ""}
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "environment"
    r = await http.post(path, headers=auth(system.tokens[Role.technician]), json=FIX)
    assert r.status_code == 403
