"""The scale benchmark's pure parts, without servers: the levels, the R3 timers' lateness,
the commitment planned per level, the synthetic rows' SQL parameters, the report."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from assistance.business_time import BusinessCalendar
from bench import report, scale, scale_report, synthetic
from bench.load import LoadRun
from bench.openloop import OpenLoopRun

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday


def test_levels_are_parsed_increasing_with_k_and_m() -> None:
    assert scale_report.parse_levels("1000,10000,100000") == [1_000, 10_000, 100_000]
    assert scale_report.parse_levels("1k, 10k,100_000,1.5M") == [1_000, 10_000, 100_000, 1_500_000]
    for bad in ("", "10k,1k", "1000,1000", "ten", "0", "1.5", "-3"):
        with pytest.raises(ValueError):
            scale_report.parse_levels(bad)
    assert [scale_report.level_label(n) for n in (999, 1_000, 1_500, 100_000, 2_000_000)] == [
        "999", "1k", "1.5k", "100k", "2M",
    ]  # fmt: skip


def test_lateness_counts_timers_not_fired_as_late_as_the_wait() -> None:
    pairs: list[tuple[datetime, datetime | None]] = [
        (T0, T0 + timedelta(milliseconds=ms)) for ms in range(1, 100)
    ]
    pairs.append((T0, T0 + timedelta(seconds=3)))
    late = scale_report.Lateness.of(pairs, now=T0 + timedelta(minutes=1))
    assert late.expected == late.fired == 100 and late.unfired == 0
    assert late.ms(50) == pytest.approx(50) and late.ms(99) == pytest.approx(99)
    assert late.max_ms == pytest.approx(3000) and late.met() is False
    assert "50 / 99 / 3,000 ms (100 of 100 fired)" in late.text()

    pending = scale_report.Lateness.of(
        [(T0, T0 + timedelta(milliseconds=5)), (T0, None)], now=T0 + timedelta(seconds=90)
    )
    assert pending.unfired == 1 and pending.max_ms == pytest.approx(90_000)
    assert pending.met() is False and "≥ 90,000 ms" in pending.text()
    # a timer reported a little early (clock rounding) is negative, not hidden
    early = scale_report.Lateness.of([(T0, T0 - timedelta(milliseconds=2))], now=T0)
    assert early.ms(50) == pytest.approx(-2) and early.met() is True
    assert scale_report.Lateness().text() == "—" and scale_report.Lateness().met() is None


def test_the_commitment_puts_every_warning_after_the_level_is_open() -> None:
    hours = scale.plan_hours(1_000, rate=20.0, fraction=0.75)
    assert hours * 60 == int(hours * 60)  # whole minutes: the wording and the timers agree
    warning_s = 0.75 * hours * 3600
    assert warning_s >= scale.MARGIN * 1_000 / 20.0 + scale.SETTLE_S
    assert float(scale.hours_setting(hours)) == hours
    assert scale.plan_hours(100_000, 20.0, 0.75) > scale.plan_hours(10_000, 20.0, 0.75)
    with pytest.raises(ValueError):
        scale.plan_hours(0, 20.0, 0.75)
    # a level's time: the opening, the budget up to its last breach, the grace, the reads
    seconds = scale.level_seconds(9_000, 30.0, 0.75, read_seconds=20.0)
    assert seconds > 9_000 / 30.0 + scale.plan_hours(9_000, 30.0, 0.75) * 3600
    lines = scale.estimates(30.0, 0.75, 20.0)
    assert lines[0].startswith("level 1,000 ≈") and "90,000 more" in lines[2]


def test_a_closed_calendar_is_refused_before_the_level() -> None:
    calendar = BusinessCalendar.parse(scale.BUSINESS_HOURS, "")
    assert scale.calendar_gap(calendar, T0, hours=0.05, horizon_s=600) == ""
    friday_night = datetime(2026, 12, 4, 22, 50, tzinfo=UTC)  # 23:50 in Paris
    assert "closes within the run" in scale.calendar_gap(calendar, friday_night, 0.05, 600)
    christmas = datetime(2026, 12, 25, 10, 0, tzinfo=UTC)
    assert scale.calendar_gap(calendar, christmas, 0.05, 60)


def test_the_synthetic_rows_parameters_match_their_sql() -> None:
    staff = synthetic.Staff(uuid.uuid4(), "Thomas Technicien")
    params = synthetic.dossier_params(50_001, 100_000, 1_000_000, T0, staff)
    numbers = {int(n) for n in re.findall(r"\$(\d+)", synthetic.DOSSIERS_SQL)}
    assert numbers == set(range(1, len(params) + 1))
    named = dict(zip(synthetic.DOSSIER_PARAMS, params, strict=True))
    assert (named["first"], named["last"], named["count"], named["until"]) == (
        50_001, 100_000, 1_000_000, T0,
    )  # fmt: skip
    assert named["span_s"] == synthetic.SPAN.total_seconds()
    assert named["technician_id"] == staff.id and named["technician_name"] == staff.name
    topics = len(synthetic.TOPICS)
    for column in ("softwares", "kinds", "subjects", "descriptions", "resolutions"):
        assert len(named[column]) == topics
    assert set(named["softwares"]) == {"manao-compta", "manao-paie"}
    assert set(named["kinds"]) <= {"usage", "advanced_usage", "bug", "evolution"}
    assert set(named["channels"]) == {"web", "mail", "phone"}
    assert len(named["names"]) == len(named["emails"])
    assert all(e.isascii() and e.endswith("@synthetique.invalid") for e in named["emails"])
    # the timeline and the breaches select the batch by reference, as the dossiers write it
    assert (synthetic.reference(1), synthetic.reference(1_000_000)) == (
        "SYN-0000001",
        "SYN-1000000",
    )
    assert "BETWEEN $1 AND $2" in synthetic.TIMELINE_SQL and "$3::text[]" in synthetic.TIMELINE_SQL
    with pytest.raises(ValueError):
        synthetic.dossier_params(1, 10, 5, T0, staff)
    with pytest.raises(ValueError):
        synthetic.dossier_params(1, 5, 5, T0.replace(tzinfo=None), staff)


def test_batches_cover_every_row_once() -> None:
    assert synthetic.batches(0) == []
    assert synthetic.batches(5, 2) == [(1, 2), (3, 4), (5, 5)]
    covered = [n for first, last in synthetic.batches(123_456) for n in range(first, last + 1)]
    assert covered == list(range(1, 123_457))


def test_deposits_vary_within_the_topics() -> None:
    bodies = [synthetic.deposit_body(i) for i in range(200)]
    assert len({b["subject"] for b in bodies}) > 50
    subjects = {topic[2] for topic in synthetic.TOPICS}
    assert all(any(b["subject"].startswith(s) for s in subjects) for b in bodies)
    assert all(len(b["subject"]) <= 200 for b in bodies)


def _level() -> scale_report.Level:
    level = scale_report.Level(1_000, 1_000, 20_000, hours=0.05, fraction=0.75)
    level.opening = LoadRun("opening", 8, 1_000, 600)
    level.opening.ok, level.opening.started, level.opening.finished = 1_000, 0.0, 40.0
    level.rss = {"worker": 300 * scale_report.MIB, "services": 200 * scale_report.MIB}
    level.rss_peak = {"worker": 3 * 1024 * scale_report.MIB, "services": 250 * scale_report.MIB}
    level.warnings = scale_report.Lateness([0.01, 0.2], 2)
    level.breaches = scale_report.Lateness([0.01, 0.02], 2)
    capacity = LoadRun("queue capacity", 4, 10, 5)
    run = OpenLoopRun("queue", rate=10.0, seconds=1.0, share=0.5)
    run.sent = run.ok = 2
    run.latencies = [0.01, 0.08]
    level.reads.append(scale_report.Read("queue", "Queue", capacity, run))
    return level


def test_the_level_table_sets_each_figure_against_its_goal(tmp_path: Path) -> None:
    level = _level()
    text = scale_report.table(level)
    assert "< 2 GiB: **not met**" in text  # the peak counts, not the quiet moment
    assert "≤ 1 s: met" in text and "p99 < 50 ms: **not met**" in text
    assert "1,000 in 40.0 s: **25.0/s**" in text
    run = scale_report.Run([level], "`python -m bench.scale`", busy="others used 60 %")
    mach = report.Machine(2, "CPU", 8.0, "3.11", "Linux", "1 / 1 / 1")
    section = scale_report.section(run, mach)
    assert section.startswith("### ") and "**Measured on a busy machine**" in section
    assert "#### 1,000 open dossiers" in section

    # the scale runs get their own list, before the runs of `make bench`
    path = tmp_path / "benchmarks.md"
    path.write_text(f"# Benchmarks\n\n{report.RUNS_HEADING}\n\n{report.RUNS_MARKER}\n\n### old\n")
    report.write(path, section, report.SCALE_HEADING, report.SCALE_MARKER)
    report.write(path, "### newer\n", report.SCALE_HEADING, report.SCALE_MARKER)
    written = path.read_text()
    assert written.index(report.SCALE_HEADING) < written.index(report.RUNS_HEADING)
    assert written.index("### newer") < written.index("#### 1,000") < written.index("### old")


def test_the_curves_have_a_point_per_level() -> None:
    levels = [_level(), _level()]
    levels[1].open_dossiers = 10_000
    for svg in (scale_report.memory_chart(levels), scale_report.latency_chart(levels)):
        root = ET.fromstring(svg)
        texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
        assert {"1k open", "10k open"} <= texts
        lines = root.findall("{http://www.w3.org/2000/svg}polyline")
        assert lines and all(len(line.get("points", "").split()) == 2 for line in lines)
