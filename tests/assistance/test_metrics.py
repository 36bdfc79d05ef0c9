"""`GET /metrics`: Prometheus text of the process's series, moving as a dossier goes through."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import deposit_body, eventually

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(http: httpx.AsyncClient) -> Series:
    r = await http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    series: Series = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            series[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return series


def value(series: Series, name: str, **labels: str) -> float:
    return series.get((name, tuple(sorted(labels.items()))), 0.0)


def total(series: Series, name: str) -> float:
    return sum(v for (n, _), v in series.items() if n == name)


POST_REQUESTS = {
    "http_request_method": "POST",
    "http_route": "/api/v1/requests",
    "http_response_status_code": "201",
}


async def test_series_move_when_a_dossier_goes_through(http: httpx.AsyncClient, system) -> None:
    before = await scrape(http)
    r = await http.post("/api/v1/requests", json=deposit_body(subject="Métriques"))
    assert r.status_code == 201

    async def moved() -> Series | None:
        now = await scrape(http)
        opened = total(now, "assistance_dossiers_open") - total(before, "assistance_dossiers_open")
        return now if opened == 1 else None

    after = await eventually(moved, timeout=20, every=0.5)
    deposits = "assistance_deposits_total"
    assert value(after, deposits, channel="web") == value(before, deposits, channel="web") + 1
    requests = "assistance_http_requests_total"
    assert value(after, requests, **POST_REQUESTS) == value(before, requests, **POST_REQUESTS) + 1
    latency = "assistance_http_request_duration_seconds_count"
    assert value(after, latency, **POST_REQUESTS) == value(before, latency, **POST_REQUESTS) + 1
    # R3: one more open commitment, with at most its whole budget (240 business minutes) left
    count = "assistance_commitment_time_left_minutes_count"
    assert value(after, count) == value(before, count) + 1
    bucket = "assistance_commitment_time_left_minutes_bucket"
    for le in ("240", "+Inf"):
        assert value(after, bucket, le=le) == value(before, bucket, le=le) + 1
    new = "assistance_dossiers_open"
    assert value(after, new, state="new", kind="unclassified") >= 1


async def test_metrics_is_not_in_the_public_api(http: httpx.AsyncClient) -> None:
    r = await http.get("/openapi.json")
    assert "/metrics" not in r.json()["paths"]


async def test_the_kernel_series_are_read(http: httpx.AsyncClient) -> None:
    series = await scrape(http)
    names = {name for name, _ in series}
    assert "assistance_outbox_oldest_age_seconds" in names
    assert any(n == "assistance_consumer_pending" for n in names)
    consumers = {
        dict(labels).get("consumer") for n, labels in series if n == "assistance_consumer_pending"
    }
    assert "dossier-projection" in consumers


def test_each_process_is_named_after_its_parts() -> None:
    from assistance.app import service_name
    from assistance.settings import Settings
    from composition.parts import choose

    settings = Settings(otel_service_name="")
    assert service_name(settings, choose(["worker"])) == "assistance-worker"
    assert service_name(settings, choose(["intake"])) == "assistance-intake"
    assert service_name(settings, choose(["intake", "dossier"])) == "assistance-services"
    assert service_name(settings, choose(["all"])) == "assistance-all"
    named = Settings(otel_service_name="support-eu")
    assert service_name(named, choose(["worker"])) == "support-eu"
