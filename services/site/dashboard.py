"""The dashboard (R3): first-response compliance per week and per software, volumes by
channel and kind, breaches, and the customers' satisfaction at closure."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.site import charts, i18n, labels, repo
from services.site.web import (
    SOFTWARE_NAMES,
    SiteRoute,
    TechnicianUser,
    backend,
    gettext_of,
    page,
)

router = APIRouter(route_class=SiteRoute, include_in_schema=False)

PERIODS = (4, 8, 13, 26)


@router.get("/bureau/tableau-de-bord")
async def dashboard(request: Request, user: TechnicianUser) -> Response:
    _ = gettext_of(request)
    try:
        weeks = int(request.query_params.get("semaines", "8"))
    except ValueError:
        weeks = 8
    weeks = weeks if weeks in PERIODS else 8
    api = backend(request)
    report = await api.get("/api/v1/reports/activity", weeks=weeks)
    breaches = await api.get("/api/v1/reports/breaches", since=report["since"])
    since = i18n.parse(report["since"])
    assert since is not None  # the report always says since when it counts
    satisfaction = await repo.satisfaction(request.app.state.pool, since)

    series = [
        ("s-on-time", _("on time")),
        ("s-late", _("late")),
        ("s-pending", _("not answered yet")),
    ]

    def compliance_rows(items: list[dict], label) -> list[tuple[str, list[int], str]]:  # noqa: ANN001
        rows = []
        for item in items:
            decided = item["on_time"] + item["late"]
            share = charts.percent(item["on_time"], decided)
            caption = "—" if share is None else f"{share} % ({item['on_time']}/{decided})"
            rows.append(
                (label(item["key"]), [item["on_time"], item["late"], item["pending"]], caption)
            )
        return rows

    def week_label(key: str) -> str:
        return _("week of %(day)s") % {"day": date.fromisoformat(key).strftime("%d/%m")}

    total = sum(w["total"] for w in report["weeks"])
    on_time = sum(w["on_time"] for w in report["weeks"])
    late = sum(w["late"] for w in report["weeks"])
    return page(
        request,
        "office_dashboard.html",
        title=_("Dashboard"),
        weeks=weeks,
        periods=PERIODS,
        since=report["since"],
        total=total,
        compliance=charts.percent(on_time, on_time + late),
        breach_count=breaches["total"],
        breaches=breaches["items"][-20:][::-1],
        by_week=charts.stacked(
            _("First response within the commitment, per week"),
            compliance_rows(report["weeks"], week_label),
            series,
        ),
        by_software=charts.stacked(
            _("First response within the commitment, per software"),
            compliance_rows(report["softwares"], lambda code: SOFTWARE_NAMES.get(code, code)),
            series,
        ),
        by_channel=charts.bars(
            _("Dossiers by channel"),
            [(_(labels.CHANNEL.get(v["key"], v["key"])), v["total"]) for v in report["channels"]],
        ),
        by_kind=charts.bars(
            _("Dossiers by nature"),
            [(_(labels.KIND.get(v["key"], labels.KIND[""])), v["total"]) for v in report["kinds"]],
            css="s-kind",
        ),
        breaches_by_week=charts.bars(
            _("Breaches per week"),
            [(week_label(w["key"]), w["breaches"]) for w in report["weeks"]],
            css="s-late",
        ),
        satisfaction=satisfaction,
        by_score=charts.bars(
            _("Ratings at closure"),
            [(f"{'★' * s}", n) for s, n in sorted(satisfaction["counts"].items(), reverse=True)],
            css="s-score",
        ),
    )
