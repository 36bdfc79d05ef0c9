"""deploy/monitoring/: the alert rules and the dashboard read series the processes export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from assistance import metrics

MONITORING = Path(__file__).parents[2] / "deploy" / "monitoring"
SERIES = re.compile(r"\bassistance_[a-z_]+")


def _exprs() -> list[str]:
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text(encoding="utf-8"))
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((MONITORING / "dashboard.json").read_text(encoding="utf-8"))
    exprs += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    return exprs


def test_every_alert_the_issue_asks_for_is_there() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text(encoding="utf-8"))
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {
        "FirstResponseBreached",
        "FirstResponseAtRiskUnassigned",
        "OutboxBacklogOld",
        "ConsumerLagging",
        "ParkedItems",
        "WorkerGone",
    } <= alerts
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["annotations"]["summary"], rule["alert"]


def test_the_series_they_read_are_exported() -> None:
    """Their names as the Prometheus exporter writes the instruments of assistance/metrics.py
    (tests/assistance/test_metrics.py reads several of them from a live `/metrics`)."""
    gauges = {name.replace(".", "_") for name in metrics._GAUGES}
    counters = {
        f"{name.replace('.', '_')}_total"
        for name in (
            metrics.BREACHES,
            "assistance.http.requests",
            "assistance.deposits",
            "assistance.mails.sent",
            "assistance.mails.refused",
        )
    }
    duration = "assistance_http_request_duration_seconds"
    histograms = {f"{duration}_{part}" for part in ("bucket", "count", "sum")}
    read = {name for expr in _exprs() for name in SERIES.findall(expr)}
    assert read - gauges - counters - histograms == set()
    assert read >= {"assistance_dossiers_open", "assistance_outbox_oldest_age_seconds"}
