"""R8: when a version carrying the fix is released, every dossier linked to the bug is told
which version — once, however many times the release is announced."""

from __future__ import annotations

import asyncpg
import httpx

from assistance.bus import Bus
from assistance.directory import Role
from deploy.local.stack import LocalStack
from tests.helpers import auth, eventually
from tests.services.bugs.support import (
    bug_dossier,
    bug_events,
    bug_state,
    develop,
    dossier_when,
    hand_over,
    mails_to,
    new_bug,
    order,
    registered_software,
    released,
    settled,
    software,
    text_of,
)


async def _handled(pool: asyncpg.Pool, *event_ids: str) -> bool:
    count = await pool.fetchval(
        "SELECT count(*) FROM bugs.inbox WHERE consumer = 'bugs-releases' "
        "AND event_id = ANY($1::text[])",
        list(event_ids),
    )
    return bool(count == len(event_ids))


async def test_three_dossiers_are_each_told_once(
    http: httpx.AsyncClient, system, bus: Bus, pool: asyncpg.Pool
) -> None:
    code = software()
    bug_id, first = await new_bug(bus, software=code)
    others = [order(software=code, bug_id=bug_id) for _ in range(2)]
    for body in others:
        assert (await hand_over(bus, body))["bug_id"] == bug_id
    dossiers = [first, *(o["dossier_id"] for o in others)]
    await develop(http, system.tokens, bug_id, upto="fix-completed")  # fixed in 5.3

    ids = [
        await released(bus, code, "5.2.9"),  # an older maintenance release: not the fix
        await released(bus, code, "5.3"),
        await released(bus, code, "5.3"),  # announced twice, under two event ids
        await released(bus, code, "5.4"),
    ]
    await eventually(lambda: _handled(pool, *ids), timeout=10)
    await settled(pool)

    shipped = await bug_events(bus, bug_id, "released")
    assert len(shipped) == 1
    assert shipped[0].data["version"] == "5.3"
    assert shipped[0].data["fix_version"] == "5.3"
    assert sorted(shipped[0].data["dossier_ids"]) == sorted(dossiers)
    bug = (
        await http.get(f"/api/v1/bugs/{bug_id}", headers=auth(system.tokens[Role.technician]))
    ).json()
    assert bug["state"] == "released"
    assert bug["release"]["version"] == "5.3"
    assert bug["released_version"] == "5.3"

    # a dossier linked after the release is told at once, alone
    late = order(software=code, bug_id=bug_id)
    await hand_over(bus, late)
    await settled(pool)
    shipped = await bug_events(bus, bug_id, "released")
    assert [e.data["dossier_ids"] for e in shipped[1:]] == [[late["dossier_id"]]]
    assert shipped[1].data["version"] == "5.3"


async def test_a_fix_for_a_version_already_out_ships_at_once(
    http: httpx.AsyncClient, system, bus: Bus, pool: asyncpg.Pool
) -> None:
    code = software()
    event_id = await released(bus, code, "5.3.1")
    await eventually(lambda: _handled(pool, event_id), timeout=10)
    bug_id, dossier_id = await new_bug(bus, software=code)

    answer = await develop(http, system.tokens, bug_id, upto="fix-completed")  # 5.3

    assert answer["version"] == "5.3"
    await settled(pool)
    shipped = await bug_events(bus, bug_id, "released")
    assert [(e.data["version"], e.data["dossier_ids"]) for e in shipped] == [
        ("5.3.1", [dossier_id])
    ]
    # signalling the same fix again after the release: same answer, no effect
    again = await http.post(
        f"/api/v1/bugs/{bug_id}/fix-completed",
        headers=auth(system.tokens[Role.developer]),
        json={"version": "5.3", "change_reference": "MR !4242", "notes": ""},
    )
    assert again.status_code == 200 and again.json() == answer
    moved = await http.post(
        f"/api/v1/bugs/{bug_id}/fix-completed",
        headers=auth(system.tokens[Role.developer]),
        json={"version": "5.4", "change_reference": "MR !4242", "notes": ""},
    )
    assert moved.status_code == 409 and moved.json()["error"]["code"] == "bug_released"


async def test_three_customers_are_mailed_the_version_once_each(
    http: httpx.AsyncClient, system, bus: Bus, pool: asyncpg.Pool, stack: LocalStack
) -> None:
    """Over the real stack: three dossiers pass the workaround gate, a technician links the
    second and third to the first one's bug, the fix ships — each customer is mailed once."""
    tokens = system.tokens
    tech = auth(tokens[Role.technician])
    code = await registered_software(pool)
    dossiers = [await bug_dossier(http, tokens, f"Écart de TVA n°{n}", code) for n in (1, 2, 3)]
    for dossier_id in dossiers:
        r = await http.post(
            f"/api/v1/dossiers/{dossier_id}/workaround",
            headers=tech,
            json={"text": "Saisir l'écart en opération diverse."},
        )
        assert r.status_code == 200, r.text
    reported = [
        await dossier_when(http, tokens[Role.technician], d, lambda x: bug_state(x) == "reported")
        for d in dossiers
    ]
    bug_id = reported[0]["details"]["bug"]["id"]
    for dossier_id in dossiers[1:]:
        r = await http.post(
            f"/api/v1/bugs/{bug_id}/dossiers", headers=tech, json={"dossier_id": dossier_id}
        )
        assert r.status_code == 200, r.text
    for dossier_id in dossiers[1:]:
        await dossier_when(
            http,
            tokens[Role.technician],
            dossier_id,
            lambda x: x["details"]["bug"] == {"id": bug_id, "state": "linked"},
        )
    await develop(http, tokens, bug_id, upto="fix-completed", fix_version="5.3")

    ids = [await released(bus, code, "5.3"), await released(bus, code, "5.3")]
    await eventually(lambda: _handled(pool, *ids), timeout=10)
    for dossier_id in dossiers:
        await dossier_when(http, tokens[Role.technician], dossier_id, _resolved)
    await settled(pool)

    [shipped] = await bug_events(bus, bug_id, "released")
    assert sorted(shipped.data["dossier_ids"]) == sorted(dossiers)
    for reference in (d["reference"] for d in reported):
        fixed = [
            m
            for m in mails_to(stack, "claire.martin@dupont-sa.fr", reference)
            if f"dans la version 5.3 de Logiciel {code}" in text_of(m)
        ]
        assert len(fixed) == 1, reference


def _resolved(dossier: dict) -> bool:
    return dossier["status"] == "resolved" and bug_state(dossier) == "released"
