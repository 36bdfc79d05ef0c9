"""The machine, the figures table, and docs/benchmarks.md (newest run first, history kept)."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.load import LoadRun
from bench.openloop import OpenLoopRun

RUNS_HEADING = "## Runs"
RUNS_MARKER = "<!-- newest run first; `make bench` inserts its section below this line -->"
SCALE_HEADING = "## Scale runs"
SCALE_MARKER = "<!-- newest scale run first; `make bench-scale` inserts its section below -->"
SCALE_TEXT = """`make bench-scale` (`python -m bench.scale`, options: `--levels` (default
`1000,10000,100000`), `--closed` (default 1,000,000), `--concurrency`, `--rate-guess`,
`--warning-fraction`, `--read-rate`, `--read-seconds`, `--output`; e.g. `make bench-scale
SCALE_ARGS="--levels 1000 --closed 20000"`) holds many dossiers open at once on the same stack
and the same two processes, level by level, and writes its sections under "Scale runs", each
level in a table against the goals, with two curves by level in
`docs/benchmarks/scale-memory-<date>.svg` and `scale-latency-<date>.svg`. At a few dozen
dossiers per second, 1,000 take minutes and 100,000 hours: the section says how long each
default level would take at the rate measured. What its rows mean:
- **open dossiers**: opened through `POST /api/v1/requests` (deposit → outbox → workflow
  started) by a closed loop of 8 callers that wait while more than 200 starts are pending in
  the outbox, so the rate is the one the whole path sustains; each is a live `DossierWorkflow`
  with one pending timer. Levels add up: the level 10,000 opens 9,000 more.
- **closed dossiers**: synthetic rows written straight into the read model with SQL
  `generate_series` (`bench/synthetic.py`): `dossier.dossiers`, three timeline entries each,
  a breach for the one in 13 answered late; references `SYN-…`, `details.synthetic = true`,
  requesters at `synthetique.invalid`, spread over three years, French texts on 20 support
  topics (the opened dossiers use the same topics); no workflow behind them.
- **RSS**: VmRSS of each process tree (`/proc`), once every timer of the level is pending and
  the highest seen during the level. The services and the worker restart at each level, with
  the level's commitment. **Sizes**: the Temporal SQLite file and its WAL;
  `pg_database_size`, and the read model (`dossier.dossiers` and `dossier.timeline` with their
  indexes).
- **R3 warnings and breaches**: the system runs on a calendar open all day
  (`BUSINESS_HOURS=00:00-23:59`: the parser has no 24:00; `CLOSED_DAYS` empty), R2 reminders
  far away, and a `FIRST_RESPONSE_HOURS` per level (whole minutes) such that every dossier's
  75 % warning falls after the level's last dossier is open (1.3 × the expected opening time
  plus a minute). A warning's due time is computed from what its dossier records
  (`received_at`, `first_response_due`) with the same calendar; it fired at its workflow event
  (the `first_response_warning` timeline entry: the workflow's time when the timer's task ran),
  and its staff notice was recorded when its step's activity committed
  (`dossier.staff_notices.created_at`). A breach is due at `first_response_due` and fired at
  `dossier.breaches.breached_at`. A timer that has not fired at the end of the wait counts as
  late as that wait (≥). Weekends and French public holidays stay closed: a level whose timers
  would cross a closure is refused before it starts.
- **reads**, after the level's timers, with a technician's token: each read's capacity by a
  closed loop of 4 callers for 8 s, then an open loop at half of it (at most 10/s) for 20 s,
  latency from the scheduled instant: the queue (`GET /api/v1/queue`: the API answers the
  whole queue, it has no page), a dossier (1,000 open ones in turn), the dashboard's report
  (`GET /api/v1/reports/activity?weeks=8`, the main call of the site's dashboard) and a search
  (8 queries in turn, frequent and rare words).
- Goals (issue 15): worker RSS < 2 GiB, R3 timers within 1 s of their time, queue and dossier
  p99 < 50 ms, search p99 < 200 ms.
"""

HEADER = f"""# Benchmarks

`make bench` (`python -m bench`, options: `--concurrency`, `--requests`, `--seconds`,
`--skip-baselines`, `--open-seconds`, `--skip-open-loop`, `--mail-requests`, `--skip-mail`,
`--output`) starts the real local stack in a temporary directory — Temporal
dev server on a SQLite file in WAL mode, NATS JetStream on a file store, embedded PostgreSQL with
fsync on — runs the system as two processes (the services, and the Temporal worker), and
drives `POST /api/v1/requests` with a closed-loop aiohttp generator. In the same run, with the
same generator and concurrency, it measures two baselines: a bare FastAPI + asyncpg endpoint doing
one INSERT, and bare `start_workflow` calls on the same Temporal server. Compare the ratios
between runs rather than the raw rates: these machines are shared and vary by ±10–30 %. The
method, and what it costs, is in `docs/decisions/0005-benchmark-method.md`.

What the rows mean:
- **deposit**: answers 201 per second over the measured run, and the latency of those answers
  (the whole system serving, its relay, worker and projections running in the same process).
- **live workflow for every dossier**: from the first measured request until the outbox holds no
  pending `start_dossier` row (the relay marks a row done only once `start_workflow` succeeded)
  *and* Temporal counts a `DossierWorkflow` for every accepted deposit.
- **after the load ended**: how long the outbox, Temporal's visibility and the read model
  (`dossier.dossiers`) kept catching up once the last answer came back.
- **open loop**: each operation (a dossier read, the queue's first page, a search, the deposit)
  first measured at its capacity by a short closed loop, then called at a constant rate of 25,
  50 and 75 % of it; each latency is counted from the instant the call was *scheduled*, so a
  slow period is not hidden by a generator that waits for it (coordinated omission). The
  deposits come last, each rate starting from a drained system. The p99 curve is drawn in
  `docs/benchmarks/open-loop-<date>.svg`.
- **mail**: new requests by mail over SMTP, 10 sessions each sending one message after another,
  counted on their 250 (answered only once the mail is committed); the baseline is a bare
  aiosmtpd that answers 250 and keeps nothing, in its own process.

{SCALE_TEXT}
{SCALE_HEADING}

{SCALE_MARKER}

{RUNS_HEADING}

{RUNS_MARKER}
"""


@dataclass
class Machine:
    cpus: int
    cpu_model: str
    ram_gib: float
    python: str
    system: str
    load_average: str
    no_bytecode: bool = False
    date: datetime = field(default_factory=lambda: datetime.now(UTC))

    def line(self) -> str:
        flags = "; PYTHONDONTWRITEBYTECODE set (no .pyc cache)" if self.no_bytecode else ""
        return (
            f"{self.cpus} CPUs ({self.cpu_model}), {self.ram_gib:.1f} GiB RAM, {self.system}, "
            f"Python {self.python}{flags}; load average at start {self.load_average}"
        )


def machine() -> Machine:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_kib = int(line.split()[1])
    except OSError:
        pass
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    try:
        load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        load = "n/a"
    return Machine(
        cpus=cpus,
        cpu_model=model,
        ram_gib=ram_kib / 1024 / 1024,
        python=platform.python_version(),
        system=f"{platform.system()} {platform.release()}",
        load_average=load,
        no_bytecode=bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
    )


@dataclass
class Drain:
    """When the deposits' follow-up work was done, in seconds (None: not within the cap)."""

    target: int  # dossiers accepted (warm-up included): the counts that must be reached
    live_from_start: float | None = None  # outbox drained and workflows counted, from 1st request
    outbox_after_load: float | None = None
    workflows_after_load: float | None = None
    projection_after_load: float | None = None
    cap: float = 0.0
    last_pending_starts: int = 0
    last_workflows: int = 0
    last_dossiers: int = 0


@dataclass
class Figures:
    concurrency: int
    requests: int
    deposit: LoadRun | None = None
    drain: Drain | None = None
    bare_insert: LoadRun | None = None
    bare_start: LoadRun | None = None
    load: str = ""
    components: str = ""
    code: str = ""
    notes: list[str] = field(default_factory=list)
    capacity: dict[str, float] = field(default_factory=dict)  # operation → calls/s, closed loop
    open_loop: list[OpenLoopRun] = field(default_factory=list)
    mail: LoadRun | None = None
    bare_mail: LoadRun | None = None
    charts: list[str] = field(default_factory=list)  # paths relative to docs/benchmarks.md


def _seconds(value: float | None, cap: float, progress: str = "") -> str:
    if value is not None:
        return f"{value:.1f} s"
    return f"not within {cap:.0f} s" + (f" ({progress})" if progress else "")


def _rate(run: LoadRun, unit: str) -> str:
    text = (
        f"**{run.rate:,.0f} {unit}/s** · p50 {run.latency_ms(50):,.0f} ms · "
        f"p99 {run.latency_ms(99):,.0f} ms"
    )
    return text + (f" ({run.ok} in {run.elapsed:.1f} s, time cap hit)" if run.capped else "")


def _ratio(numerator: float, denominator: float) -> str:
    if denominator <= 0 or math.isnan(denominator):
        return "n/a"
    return f"{numerator / denominator:.2f}"


def rows(fig: Figures) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    dep, drain = fig.deposit, fig.drain
    if dep is not None:
        out.append(("Deposit `POST /api/v1/requests`, whole system", _rate(dep, "accepted")))
        others = ", ".join(f"{n} × {k}" for k, n in dep.failures.most_common()) or "none"
        out.append(("Answers other than 201", f"{dep.failed} ({others}) of {dep.sent} sent"))
    if dep is not None and drain is not None:
        live = drain.live_from_start
        live_text = _seconds(live, drain.cap + dep.elapsed)
        if live is not None:
            live_text += f" ({dep.ok / live:,.0f} dossiers/s end to end)"
        out.append(("Live workflow for every dossier, from the first request", live_text))
        after = "… after the load ended:"
        cap, target = drain.cap, drain.target
        pending = f"{drain.last_pending_starts} still pending"
        counted = f"{drain.last_workflows:,} of {target:,} counted"
        projected = f"{drain.last_dossiers:,} of {target:,} projected"
        out += [
            (
                f"{after} outbox `start_dossier` drained",
                _seconds(drain.outbox_after_load, cap, pending),
            ),
            (
                f"{after} Temporal counts every workflow",
                _seconds(drain.workflows_after_load, cap, counted),
            ),
            (f"{after} read model complete", _seconds(drain.projection_after_load, cap, projected)),
        ]
    if fig.bare_insert is not None:
        out.append(("Baseline: FastAPI + one asyncpg INSERT", _rate(fig.bare_insert, "req")))
    if fig.bare_start is not None:
        out.append(
            ("Baseline: Temporal `start_workflow`, one client", _rate(fig.bare_start, "starts"))
        )
    if dep is not None and fig.bare_insert is not None:
        out.append(("Ratio deposit / bare insert", _ratio(dep.rate, fig.bare_insert.rate)))
    if dep is not None and fig.bare_start is not None:
        out.append(("Ratio deposit / bare `start_workflow`", _ratio(dep.rate, fig.bare_start.rate)))
    if fig.mail is not None:
        out.append(("Mail over SMTP, 250 after commit, whole system", _rate(fig.mail, "accepted")))
        refused = ", ".join(f"{n} × {k}" for k, n in fig.mail.failures.most_common()) or "none"
        out.append(("Mails not accepted", f"{fig.mail.failed} ({refused}) of {fig.mail.sent} sent"))
    if fig.bare_mail is not None:
        out.append(("Baseline: bare aiosmtpd answering 250", _rate(fig.bare_mail, "accepted")))
    if fig.mail is not None and fig.bare_mail is not None:
        out.append(("Ratio mail / bare aiosmtpd", _ratio(fig.mail.rate, fig.bare_mail.rate)))
    return out


def _ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.0f}"


def open_loop_rows(fig: Figures) -> list[list[str]]:
    """Per operation and rate: the capacity it is a share of, the latencies from the scheduled
    instant, and what did not answer as expected."""
    out = []
    for run in fig.open_loop:
        capacity = fig.capacity.get(run.operation, float("nan"))
        out.append(
            [
                run.operation,
                f"{capacity:,.0f}/s",
                f"{run.share:.0%} · {run.rate:,.1f}/s",
                f"{run.ok:,}/{run.sent:,}",
                _ms(run.latency_ms(50)),
                _ms(run.latency_ms(99)),
                _ms(run.latency_ms(99.9)),
                str(run.failed),
            ]
        )
    return out


OPEN_LOOP_HEAD = [
    "operation",
    "capacity (closed loop)",
    "rate",
    "answered",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "failed",
]


def table(fig: Figures) -> str:
    lines = ["| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows(fig)]
    return "\n".join(lines)


def open_loop_table(fig: Figures) -> str:
    lines = ["| " + " | ".join(OPEN_LOOP_HEAD) + " |", "|" + "---|" * len(OPEN_LOOP_HEAD)]
    lines += ["| " + " | ".join(row) + " |" for row in open_loop_rows(fig)]
    return "\n".join(lines)


def plain_table(fig: Figures) -> str:
    pairs = [(name.replace("`", ""), value.replace("**", "")) for name, value in rows(fig)]
    width = max((len(name) for name, _ in pairs), default=0)
    text = "\n".join(f"  {name:<{width}}  {value}" for name, value in pairs)
    if fig.open_loop:
        table = [OPEN_LOOP_HEAD, *open_loop_rows(fig)]
        widths = [max(len(row[i]) for row in table) for i in range(len(OPEN_LOOP_HEAD))]
        text += "\n\n  Open loop (latency from the scheduled instant):\n" + "\n".join(
            "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            for row in table
        )
    return text


def section(fig: Figures, mach: Machine, command: str) -> str:
    when = mach.date.strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"### {when}",
        "",
        f"- Machine: {mach.line()}",
        f"- Command: {command}",
        f"- Load: {fig.load}",
    ]
    if fig.code:
        parts.append(f"- Code: {fig.code}")
    if fig.components:
        parts.append(f"- Components: {fig.components}")
    parts += ["", table(fig)]
    if fig.open_loop:
        parts += [
            "",
            "Open loop: calls at a constant rate, a share of each operation's closed-loop "
            "capacity; latency from the instant each call was scheduled.",
            "",
            open_loop_table(fig),
        ]
    return "\n".join(parts + appendix(fig.charts, fig.notes)) + "\n"


def appendix(charts: list[str], notes: list[str]) -> list[str]:
    """A section's last lines: its charts (paths relative to the page), what was observed."""
    parts: list[str] = []
    for chart in charts:
        parts += ["", f"![{chart}]({chart})"]
    if notes:
        parts += ["", "Observed:"]
        parts += [f"- {note}" for note in notes]
    return parts


def write(
    path: Path, new_section: str, heading: str = RUNS_HEADING, marker: str = RUNS_MARKER
) -> None:
    """Insert `new_section` at the top of the list under `heading` (the Runs of `make bench`
    by default), keeping every earlier run. A missing list is added before the Runs."""
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    if marker not in text:
        if heading not in text:
            if heading != RUNS_HEADING and f"\n{RUNS_HEADING}\n" in text:
                before, after = text.split(f"\n{RUNS_HEADING}\n", 1)
                text = f"{before}\n{heading}\n\n{RUNS_HEADING}\n{after}"
            else:
                text = text.rstrip("\n") + f"\n\n{heading}\n"
        text = text.replace(heading, f"{heading}\n\n{marker}", 1)
    before, after = text.split(marker, 1)
    text = f"{before}{marker}\n\n{new_section}\n{after.lstrip(chr(10))}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
