"""The dossier service's activity report, which the dashboard draws (R3): per week and per
software, first responses in time, late, or pending; volumes by channel and kind."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import httpx

from assistance.directory import Role
from tests.helpers import auth
from tests.services.site.support import opened_dossier


async def _report(http: httpx.AsyncClient, system, **params) -> dict:
    r = await http.get(
        "/api/v1/reports/activity", params=params, headers=auth(system.tokens[Role.technician])
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_activity_report_counts_what_happened(system, http: httpx.AsyncClient) -> None:
    before = await _report(http, system, weeks=4)
    answered = await opened_dossier(
        http, system, software="manao-paie", subject="Taux de cotisation retraite à mettre à jour"
    )
    tech = auth(system.tokens[Role.technician])
    base = f"/api/v1/dossiers/{answered['id']}"
    assert (await http.post(f"{base}/take", headers=tech)).status_code == 200
    r = await http.post(f"{base}/responses", headers=tech, json={"text": "Voici la réponse."})
    assert r.status_code == 200
    await opened_dossier(
        http, system, software="manao-paie", subject="Import des variables de paie refusé"
    )
    after = await _report(http, system, weeks=4)

    assert len(after["weeks"]) == 4
    mondays = [date.fromisoformat(w["key"]) for w in after["weeks"]]
    assert all(d.weekday() == 0 for d in mondays)
    assert mondays == [mondays[0] + timedelta(weeks=i) for i in range(4)]
    since = datetime.fromisoformat(after["since"])
    assert since.date() == mondays[0] and (since.hour, since.minute) == (0, 0)

    def by(items: list[dict], key: str) -> dict:
        return next((i for i in items if i["key"] == key), {"total": 0, "on_time": 0})

    this_week = after["weeks"][-1]
    was = before["weeks"][-1]
    assert this_week["total"] == was["total"] + 2
    assert this_week["on_time"] == was["on_time"] + 1
    assert this_week["total"] == this_week["on_time"] + this_week["late"] + this_week["pending"]
    paie, paie_before = by(after["softwares"], "manao-paie"), by(before["softwares"], "manao-paie")
    assert paie["total"] == paie_before["total"] + 2
    assert paie["on_time"] == paie_before["on_time"] + 1
    assert by(after["channels"], "web")["total"] == by(before["channels"], "web")["total"] + 2
    assert (
        by(after["kinds"], "unclassified")["total"]
        == by(before["kinds"], "unclassified")["total"] + 2
    )


async def test_activity_report_is_for_staff(system, http: httpx.AsyncClient) -> None:
    customer = auth(system.tokens[Role.customer])
    assert (await http.get("/api/v1/reports/activity", headers=customer)).status_code == 403
    assert (await http.get("/api/v1/reports/activity")).status_code == 401
    r = await http.get(
        "/api/v1/reports/activity",
        params={"weeks": 0},
        headers=auth(system.tokens[Role.technician]),
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "weeks"
