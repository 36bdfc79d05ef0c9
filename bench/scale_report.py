"""The scale benchmark's figures: levels, R3 timers' lateness, the table per level against the
goals, the curves by level, and its section of docs/benchmarks.md."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime

from bench import charts, report
from bench.load import LoadRun, percentile
from bench.openloop import OpenLoopRun

MIB = 1024 * 1024

# Goals (issue 15, item 3)
WORKER_RSS_GOAL = 2 * 1024 * MIB
LATENESS_GOAL_S = 1.0
READ_GOALS_MS = {"queue": 50.0, "dossier": 50.0, "search": 200.0}

_LEVEL = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)$")


def parse_levels(text: str) -> list[int]:
    """ "1000,10000,100000" or "1k,10k,100k" (M for millions): positive, increasing (each level
    opens the difference with the previous one)."""
    levels: list[int] = []
    for part in (p.strip().replace("_", "") for p in text.split(",")):
        found = _LEVEL.match(part)
        if found is None:
            raise ValueError(f"level {part!r} is not a number such as 1000 or 10k")
        value = float(found[1]) * {"": 1, "k": 1_000, "m": 1_000_000}[found[2].lower()]
        if value != int(value) or value < 1:
            raise ValueError(f"level {part!r} is not a whole number of dossiers")
        if levels and value <= levels[-1]:
            raise ValueError(f"levels must increase: {part} after {levels[-1]:,}")
        levels.append(int(value))
    if not levels:
        raise ValueError("no level given")
    return levels


def level_label(count: int) -> str:
    """1000 → "1k", 100000 → "100k", 1500 → "1.5k", 2000000 → "2M"."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if count >= size:
            return f"{count / size:g}{suffix}"
    return str(count)


@dataclass
class Lateness:
    """How late timers fired against their due time, in seconds (negative: early)."""

    values: list[float] = field(default_factory=list)  # sorted
    expected: int = 0  # timers that should have fired
    unfired: int = 0  # still not fired at the end of the wait: counted as late as that wait

    @classmethod
    def of(cls, pairs: list[tuple[datetime, datetime | None]], now: datetime) -> Lateness:
        """From (due, fired) pairs; a timer not fired yet counts as late by `now - due` (a lower
        bound), so an overloaded worker is never reported as punctual."""
        values = [((fired or now) - due).total_seconds() for due, fired in pairs]
        unfired = sum(1 for _, fired in pairs if fired is None)
        return cls(sorted(values), len(pairs), unfired)

    @property
    def fired(self) -> int:
        return self.expected - self.unfired

    def ms(self, q: float) -> float:
        return percentile(self.values, q) * 1000

    @property
    def max_ms(self) -> float:
        return self.values[-1] * 1000 if self.values else math.nan

    def met(self, goal_s: float = LATENESS_GOAL_S) -> bool | None:
        if not self.values:
            return None
        return self.unfired == 0 and self.values[-1] <= goal_s

    def text(self) -> str:
        if not self.expected:
            return "—"
        bound = "≥ " if self.unfired else ""
        out = (
            f"{_ms(self.ms(50))} / {_ms(self.ms(99))} / {bound}{_ms(self.max_ms)} ms "
            f"({self.fired:,} of {self.expected:,} fired"
        )
        if self.unfired:
            out += f"; {self.unfired:,} had not fired at the end of the wait"
        return out + ")"


@dataclass
class Read:
    """One read operation at one level: its closed-loop capacity, then the open loop."""

    operation: str
    label: str  # what was called
    capacity: LoadRun
    run: OpenLoopRun | None = None  # None: no answer in the capacity loop


@dataclass
class Level:
    open_dossiers: int  # cumulative, after this level
    batch: int  # opened in this level
    closed: int  # synthetic closed dossiers in the read model
    hours: float  # FIRST_RESPONSE_HOURS the level's dossiers were opened under
    fraction: float
    opening: LoadRun | None = None
    live_after_s: float | None = None  # every workflow live, after the last answer
    rss: dict[str, int] = field(default_factory=dict)  # with the timers pending
    rss_peak: dict[str, int] = field(default_factory=dict)  # during the whole level
    temporal_db: int = 0  # SQLite file + WAL, bytes
    pg_database: int = 0
    pg_read_model: int = 0
    warnings: Lateness = field(default_factory=Lateness)
    notices: Lateness = field(default_factory=Lateness)
    breaches: Lateness = field(default_factory=Lateness)
    warned_while_opening: int = 0  # warnings due before the level's last dossier was open
    reads: list[Read] = field(default_factory=list)
    seconds: float = 0.0  # the whole level, wall clock

    @property
    def label(self) -> str:
        return level_label(self.open_dossiers)

    @property
    def open_rate(self) -> float:
        return self.opening.rate if self.opening is not None and self.opening.ok else math.nan

    def read(self, operation: str) -> Read | None:
        return next((r for r in self.reads if r.operation == operation), None)

    def read_p99(self, operation: str) -> float:
        found = self.read(operation)
        return found.run.latency_ms(99) if found and found.run else math.nan


def _ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.0f}"


def _mib(value: int | None) -> str:
    return "—" if not value else f"{value / MIB:,.0f} MiB"


def _verdict(met: bool | None, goal: str) -> str:
    if met is None:
        return f"{goal}: not measured"
    return f"{goal}: met" if met else f"{goal}: **not met**"


def _pair(level: Level, name: str) -> str:
    now, peak = level.rss.get(name), level.rss_peak.get(name)
    return f"{_mib(now)} / {_mib(peak)}"


def rows(level: Level) -> list[tuple[str, str, str]]:
    """(measure, value, goal) for one level."""
    out: list[tuple[str, str, str]] = [
        (
            "Open dossiers (each opened through `POST /api/v1/requests`, a live workflow "
            "with its R3 timer)",
            f"{level.open_dossiers:,} ({level.batch:,} opened in this level)",
            "",
        ),
        ("Closed dossiers in the read model (synthetic, inserted by SQL)", f"{level.closed:,}", ""),
    ]
    run = level.opening
    if run is not None:
        text = (
            f"{run.ok:,} in {run.elapsed:,.1f} s: **{run.rate:,.1f}/s** "
            f"({run.concurrency} concurrent callers, held back while too many starts pend)"
        )
        if run.failed:
            text += f"; {run.failed:,} answers other than 201"
        live = "—" if level.live_after_s is None else f"{level.live_after_s:,.1f} s"
        text += f"; every workflow live {live} after the last answer"
        out.append(("Opening", text, ""))
    worker_met = (
        None if "worker" not in level.rss_peak else level.rss_peak["worker"] < WORKER_RSS_GOAL
    )
    out += [
        (
            "Worker RSS (timers pending / peak during the level)",
            _pair(level, "worker"),
            _verdict(worker_met, "< 2 GiB"),
        ),
        ("Services RSS (one process, every service)", _pair(level, "services"), ""),
        ("Temporal server RSS", _pair(level, "temporal"), ""),
        ("Temporal database (SQLite file + WAL)", _mib(level.temporal_db), ""),
        (
            "PostgreSQL database (of which the dossier read model)",
            f"{_mib(level.pg_database)} ({_mib(level.pg_read_model)})",
            "",
        ),
        (
            f"R3 warning ({level.fraction:.0%} of {level.hours * 60:g} min), workflow event "
            "late by p50 / p99 / max",
            level.warnings.text(),
            _verdict(level.warnings.met(), "≤ 1 s"),
        ),
        ("… its staff notice recorded, late by", level.notices.text(), ""),
        ("R3 breach (the due time), late by", level.breaches.text(), _verdict(
            level.breaches.met(), "≤ 1 s")),
    ]  # fmt: skip
    if level.warned_while_opening:
        out.append(
            (
                "Warnings due while the level was still opening",
                f"{level.warned_while_opening:,} (the opening was slower than planned)",
                "",
            )
        )
    for read in level.reads:
        goal = READ_GOALS_MS.get(read.operation)
        if read.run is None:
            value = f"no answer in the capacity loop ({dict(read.capacity.failures)})"
            met: bool | None = False
        else:
            r = read.run
            value = (
                f"{_ms(r.latency_ms(50))} / **{_ms(r.latency_ms(99))}** / "
                f"{_ms(max(r.latencies, default=math.nan) * 1000)} ms at {r.rate:,.1f}/s "
                f"({r.ok:,}/{r.sent:,} answered; capacity {read.capacity.rate:,.1f}/s)"
            )
            if r.failed:
                value += f", {r.failed:,} failed"
            p99 = r.latency_ms(99)
            met = None if math.isnan(p99) else (p99 < goal if goal else None) and not r.failed
        out.append(
            (
                f"{read.label}: p50 / p99 / max",
                value,
                "" if goal is None else _verdict(met, f"p99 < {goal:,.0f} ms"),
            )
        )
    return out


def table(level: Level) -> str:
    lines = ["| measure | value | goal |", "|---|---|---|"]
    lines += [f"| {m} | {v} | {g} |" for m, v, g in rows(level)]
    return "\n".join(lines)


def plain(level: Level) -> str:
    pairs = [
        (m.replace("`", ""), f"{v}{'   [' + g + ']' if g else ''}".replace("**", ""))
        for m, v, g in rows(level)
    ]
    width = max(len(m) for m, _ in pairs)
    return "\n".join(f"  {m:<{width}}  {v}" for m, v in pairs)


def memory_chart(levels: list[Level]) -> str:
    series: dict[str, list[float]] = {
        "worker RSS": [lv.rss_peak.get("worker", 0) / MIB or math.nan for lv in levels],
        "services RSS": [lv.rss_peak.get("services", 0) / MIB or math.nan for lv in levels],
        "Temporal RSS": [lv.rss_peak.get("temporal", 0) / MIB or math.nan for lv in levels],
        "Temporal DB": [lv.temporal_db / MIB or math.nan for lv in levels],
        "PostgreSQL DB": [lv.pg_database / MIB or math.nan for lv in levels],
    }
    labels = [f"{lv.label} open" for lv in levels]
    return charts.line_chart("Scale: memory and storage by level", labels, series, "MiB")


def latency_chart(levels: list[Level]) -> str:
    series: dict[str, list[float]] = {
        "R3 warning p99": [lv.warnings.ms(99) for lv in levels],
        "R3 breach p99": [lv.breaches.ms(99) for lv in levels],
    }
    for operation in ("queue", "dossier", "dashboard", "search"):
        series[f"{operation} p99"] = [lv.read_p99(operation) for lv in levels]
    labels = [f"{lv.label} open" for lv in levels]
    return charts.line_chart("Scale: lateness and read p99 by level", labels, series, "ms")


def duration_text(seconds: float) -> str:
    if math.isnan(seconds):
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class Run:
    """A whole scale run, for its section."""

    levels: list[Level]
    command: str
    components: str = ""
    code: str = ""
    settings: str = ""
    busy: str = ""  # what else used the machine, when it mattered
    estimates: list[str] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)  # paths relative to docs/benchmarks.md
    notes: list[str] = field(default_factory=list)


def section(run: Run, mach: report.Machine) -> str:
    when = mach.date.strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"### {when}", ""]
    if run.busy:
        parts += [f"**Measured on a busy machine**: {run.busy}", ""]
    parts += [f"- Machine: {mach.line()}", f"- Command: {run.command}"]
    if run.code:
        parts.append(f"- Code: {run.code}")
    if run.components:
        parts.append(f"- Components: {run.components}")
    if run.settings:
        parts.append(f"- System under test: {run.settings}")
    for level in run.levels:
        parts += [
            "",
            f"#### {level.open_dossiers:,} open dossiers ({duration_text(level.seconds)})",
            "",
            table(level),
        ]
    if run.estimates:
        parts += [
            "",
            "At this run's last opening rate, the default levels would take: "
            + "; ".join(run.estimates)
            + " (opening, the wait for the level's R3 timers, the reads).",
        ]
    return "\n".join(parts + report.appendix(run.charts, run.notes)) + "\n"
