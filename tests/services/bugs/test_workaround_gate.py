"""R8, the workaround gate, over the real stack: a dossier classified "bug" reaches the
developers only after the technician has recorded a workaround (or why there is none)."""

from __future__ import annotations

import asyncpg
import httpx

from assistance.bus import Bus
from assistance.directory import Role
from tests.helpers import auth
from tests.services.bugs.support import (
    bug_dossier,
    bug_state,
    dossier_when,
    new_bug,
    software,
)


async def test_no_handover_to_the_developers_without_a_workaround(
    http: httpx.AsyncClient, system, bus: Bus, pool: asyncpg.Pool
) -> None:
    dossier_id = await bug_dossier(http, system.tokens, "Relance des impayés bloquée")
    tech = auth(system.tokens[Role.technician])
    base = f"/api/v1/dossiers/{dossier_id}"

    # neither a workaround nor a reason: refused, and nothing reaches the bugs service
    for body in ({}, {"text": "  "}, {"text": "Relancer à la main", "none_reason": "Aucun"}):
        refused = await http.post(f"{base}/workaround", headers=tech, json=body)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "workaround_required"
    dossier = (await http.get(base, headers=tech)).json()
    assert (dossier["status"], dossier["kind"], bug_state(dossier)) == ("in_progress", "bug", None)
    # nor can a technician link it to a known bug behind the gate's back
    known, _ = await new_bug(bus, software=software())
    linked = await http.post(
        f"/api/v1/bugs/{known}/dossiers", headers=tech, json={"dossier_id": dossier_id}
    )
    assert linked.status_code == 409 and linked.json()["error"]["code"] == "workaround_first"
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM bugs.bug_dossiers WHERE dossier_id = $1::uuid", dossier_id
        )
        == 0
    )

    # the reason there is none opens the gate too
    opened = await http.post(
        f"{base}/workaround",
        headers=tech,
        json={"none_reason": "Le module de relance n'a pas d'autre chemin."},
    )
    assert opened.status_code == 200, opened.text
    dossier = await dossier_when(
        http, system.tokens[Role.technician], dossier_id, lambda d: bug_state(d) == "reported"
    )
    assert dossier["status"] == "waiting_service"
    bug = (
        await http.get(
            f"/api/v1/bugs/{dossier['details']['bug']['id']}",
            headers=auth(system.tokens[Role.developer]),
        )
    ).json()
    assert bug["title"] == "Relance des impayés bloquée"
    assert bug["software"] == "manao-compta"
    assert bug["affected_versions"] == ["5.2"]
    assert bug["workarounds"] == []  # none was given
    assert [d["dossier_id"] for d in bug["dossiers"]] == [dossier_id]
