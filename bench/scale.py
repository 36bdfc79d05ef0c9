"""`make bench-scale`: many dossiers open at once, each a live workflow with its R3 timer.

    python -m bench.scale [--levels 1000,10000,100000] [--closed 1000000] [--concurrency 8]
                          [--output docs/benchmarks.md]

On the real local stack (as `make bench`), with the system under test in two processes (the
services, and the Temporal worker): `--closed` closed dossiers are first written straight into
the read model (synthetic, bench/synthetic.py); then, level by level, dossiers are opened
through `POST /api/v1/requests` (deposit → outbox → workflow started) by a closed loop held back
while starts pend, until the level's count is open. They sit with their timers: the worker's,
services' and Temporal's RSS and the databases' sizes are read; then the level's R3 warnings and
breaches fire, on a calendar open all day (`BUSINESS_HOURS=00:00-23:59`) and with a commitment
short enough that the first warning falls just after the level's last dossier is open, and
their lateness against their due time is read from what the dossiers record; last, the read
side (queue, a dossier, the dashboard's report, search) is called in an open loop.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import asyncpg
from temporalio.client import Client

from assistance import db
from assistance.business_time import BusinessCalendar
from assistance.commitment import Commitment
from assistance.directory import Role
from bench import charts, cpu, report, scale_report, synthetic
from bench.load import Call, LoadRun, get_ok, http_session, post_json
from bench.run import (
    CAPACITY_S,
    OPEN_CONNECTIONS,
    ROOT,
    TICK_S,
    Harness,
    Probe,
    System,
    _background,
    _command,
    _cpus,
    _observations,
    run_harness,
    say,
)
from bench.scale_report import Lateness, Level, Read
from composition.app import load_demo, migrate
from deploy.local.stack import Endpoints, create_database
from services.dossier.domain import OPEN

DEFAULT_LEVELS = (1_000, 10_000, 100_000)
BUSINESS_HOURS = "00:00-23:59"  # the parser has no 24:00: one closed minute a night
FAR_HOURS = "2000"  # R2 reminders and escalation: far beyond any run, pending all along
MARGIN = 1.3  # the first warning falls this × the expected opening time after the first deposit
SETTLE_S = 60.0  # … plus this, for the drain and the readings with every timer pending
MIN_OPEN_RATE = 2.0  # an opening slower than this many dossiers per second is cut short
MAX_BACKLOG = 200  # the deposits wait while more starts than this are pending in the outbox
READ_CONCURRENCY = 4  # callers of the closed loop measuring a read's capacity
READ_SHARE = 0.5  # the open loop's rate, as a share of that capacity (at most --read-rate)
BUSY_SHARE = 0.2  # other processes taking this share of the CPU mark the run as busy
MAIL_CLEAR_S = 5.0  # the stack's mail catcher keeps mails in memory: emptied this often
_OPEN_SQL = "status = ANY('{" + ",".join(OPEN) + "}'::text[])"  # the status index answers


def plan_hours(batch: int, rate: float, fraction: float) -> float:
    """FIRST_RESPONSE_HOURS for a level of `batch` deposits expected at `rate` per second: the
    warning of its first dossier falls MARGIN × the expected opening time plus SETTLE_S after
    it, so every warning falls after the last dossier is open; in whole minutes."""
    if batch < 1 or not rate > 0 or not 0 < fraction < 1:
        raise ValueError(f"batch {batch}, rate {rate} and fraction {fraction} are out of range")
    warn_after = MARGIN * batch / rate + SETTLE_S
    return math.ceil(warn_after / fraction / 60) / 60


def hours_setting(hours: float) -> str:
    """The setting's text; the float the system parses from it is `float(text)`."""
    return format(hours, ".12g")


def level_seconds(batch: int, rate: float, fraction: float, read_seconds: float) -> float:
    """How long a level takes: the opening, then until its last breach (the due time of its
    last dossier) plus the grace, then the four reads."""
    opening = batch / rate
    budget = plan_hours(batch, rate, fraction) * 3600
    reads = 4 * (CAPACITY_S + read_seconds)
    return opening + budget + timer_grace(opening) + reads


def estimates(rate: float, fraction: float, read_seconds: float) -> list[str]:
    """How long each default level would take at `rate` dossiers/s (an extrapolation: the
    rate may fall as more dossiers are open)."""
    out, before = [], 0
    for count in DEFAULT_LEVELS:
        seconds = level_seconds(count - before, rate, fraction, read_seconds)
        more = f", {count - before:,} more" if before else ""
        out.append(f"level {count:,}{more} ≈ {scale_report.duration_text(seconds)}")
        before = count
    return out


def timer_grace(opening_s: float) -> float:
    """How long to wait for late timers after the last due time."""
    return 60.0 + 0.5 * opening_s


def calendar_gap(
    calendar: BusinessCalendar, start: datetime, hours: float, horizon_s: float
) -> str:
    """Why the commitment of a dossier opened between `start` and `start + horizon_s` would not
    run in real time (a night, a weekend, a public holiday); empty when it does."""
    budget = timedelta(hours=hours)
    for offset in (0.0, horizon_s / 2, horizon_s):
        at = start + timedelta(seconds=offset)
        due = calendar.add_business_time(at, budget)
        if due - at > budget + timedelta(minutes=2):
            return (
                f"a dossier opened at {at:%Y-%m-%d %H:%M} UTC would be due at "
                f"{due:%Y-%m-%d %H:%M %Z}: the calendar (Monday to Friday, French public "
                "holidays closed) closes within the run; start it on a working day"
            )
    return ""


class Scale(Harness):
    poll_s = 1.0  # the read model holds up to a million rows: a calmer drain poll

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__()
        self.args = args
        self.levels: list[Level] = []
        self.queue = f"bench-scale-{uuid.uuid4().hex[:8]}"
        self.system: System | None = None
        self.out = scale_report.Run(levels=self.levels, command="")
        self.peak: dict[str, int] = {}
        self.calendar = BusinessCalendar.parse(BUSINESS_HOURS, "")
        # what other processes took of the CPU, while the system under test ran (a stopped
        # process's CPU leaves the snapshot: each window ends before a stop)
        self.window: tuple[dict[str, float], float] | None = None
        self.others_s = 0.0
        self.counted_s = 0.0

    # --- the whole run -------------------------------------------------------------------------

    async def _runs(self, ends: Endpoints) -> None:
        self.out.components, self.out.code = self.components, self.code
        url = await create_database(ends.database_url, "assistance")
        await migrate(url)
        pool = await db.create_pool(url, 4)
        try:
            await self._levels(ends, url, pool)
        finally:
            await pool.close()

    async def close(self) -> None:
        self._count_others()
        self._busy()
        await super().close()

    async def _levels(self, ends: Endpoints, url: str, pool: asyncpg.Pool) -> None:
        tokens = await load_demo(pool)
        token = next(token for _, role, token in tokens if role is Role.technician)
        await self._closed(pool)
        temporal = await Client.connect(ends.temporal_address)
        probe = Probe(pool, temporal, dossiers=_OPEN_SQL)
        self.out.settings = (
            f"`BUSINESS_HOURS={BUSINESS_HOURS}`, `CLOSED_DAYS` empty, "
            f"`FIRST_RESPONSE_WARNING_FRACTION={self.args.warning_fraction:g}`, "
            f"`FIRST_RESPONSE_HOURS` per level (below), `REMINDER_HOURS` and "
            f"`ESCALATION_HOURS` {FAR_HOURS} (R2 timers pending all along), default worker"
        )
        async with _background(self._sample_memory()), _background(self._empty_mailbox()):
            for target in self.args.levels:
                await self._level(ends, url, pool, probe, token, target)
        assert self.system is not None
        for child in (self.system.sut, self.system.worker):
            notes = await _observations(pool, child)
            self.keep_logs = self.keep_logs or any(n.startswith("system log") for n in notes)
            for note in notes:
                say(f"  observed ({child.name}): {note}")
                self.out.notes.append(f"{child.name}: {note}")
        self._count_others()
        await self._stop_system(self.system)

    async def _closed(self, pool: asyncpg.Pool) -> None:
        count = self.args.closed
        if not count:
            return
        say(f"▸ {count:,} closed dossiers written into the read model (synthetic, SQL)…")
        row = await pool.fetchrow(
            "SELECT id, name FROM directory.users WHERE role = 'technician' ORDER BY email LIMIT 1"
        )
        began = time.perf_counter()

        def progress(done: int, total: int) -> None:
            took = time.perf_counter() - began
            say(f"  {done:,}/{total:,} in {took:,.0f} s ({done / max(took, 1e-9):,.0f}/s)")

        now = datetime.now(UTC)
        staff = synthetic.Staff(row["id"], row["name"])
        await synthetic.insert_closed(pool, count, now, staff, progress)

    # --- one level -----------------------------------------------------------------------------

    async def _level(
        self, ends: Endpoints, url: str, pool: asyncpg.Pool, probe: Probe, token: str, target: int
    ) -> None:
        began = time.perf_counter()
        opened = await probe.accepted()
        batch = target - opened
        previous = self.levels[-1].open_rate if self.levels else math.nan
        rate = previous if previous > 0 else self.args.rate_guess
        fraction = self.args.warning_fraction
        hours = float(hours_setting(plan_hours(batch, rate, fraction)))
        say(
            f"▸ Level {target:,}: {batch:,} more dossiers, expected at {rate:,.1f}/s; "
            f"FIRST_RESPONSE_HOURS {hours * 60:g} min (warning {fraction * hours * 60:g} min "
            "after each deposit)"
        )
        gap = calendar_gap(self.calendar, datetime.now(UTC), hours, MARGIN * batch / rate)
        if gap:
            raise RuntimeError(gap)
        level = Level(target, batch, self.args.closed, hours, fraction)
        self.levels.append(level)
        self.peak = level.rss_peak
        await self._restart(ends, url, hours)
        assert self.system is not None
        first = datetime.now(UTC)
        level.opening = await self._open(probe, batch, opened)
        last = datetime.now(UTC)
        drain = await self._wait_drained(
            probe, opened + level.opening.ok, timer_grace(level.opening.elapsed), "drain",
            level.opening,
        )  # fmt: skip
        level.live_after_s = drain.workflows_after_load
        await self._sizes(pool, level)
        await self._timers(pool, level, first, last)
        await self._reads(pool, level, token)
        level.seconds = time.perf_counter() - began
        say(f"\n  Level {target:,} ({scale_report.duration_text(level.seconds)}):")
        say(scale_report.plain(level))

    async def _restart(self, ends: Endpoints, url: str, hours: float) -> None:
        """The system under test with this level's commitment (intake records it in each new
        dossier's policy; the dossiers already open keep theirs)."""
        if self.system is not None:
            self._count_others()
            await self._stop_system(self.system)
            self.system = None
        settings = {
            "BUSINESS_HOURS": BUSINESS_HOURS,
            "CLOSED_DAYS": "",
            "FIRST_RESPONSE_HOURS": hours_setting(hours),
            "FIRST_RESPONSE_WARNING_FRACTION": format(self.args.warning_fraction, "g"),
            "REMINDER_HOURS": FAR_HOURS,
            "ESCALATION_HOURS": FAR_HOURS,
        }
        self.system = await self._start_system(ends, url, self.queue, settings)
        self.window = (cpu.snapshot(), time.perf_counter())

    async def _open(self, probe: Probe, batch: int, opened: int) -> LoadRun:
        """`batch` deposits by a closed loop, each caller waiting while more than MAX_BACKLOG
        starts are pending: the rate the whole path sustains, not only the HTTP side."""
        assert self.system is not None
        flowing = asyncio.Event()
        pending = 0

        async def watch() -> None:
            nonlocal pending
            while True:
                pending, _ = await probe.pending_and_dossiers()
                if pending > MAX_BACKLOG:
                    flowing.clear()
                else:
                    flowing.set()
                await asyncio.sleep(0.5)

        async def line() -> str:
            _, dossiers = await probe.pending_and_dossiers()
            rss = self.peak.get("worker", 0) / scale_report.MIB
            return (
                f"start_dossier pending {pending}, open dossiers projected {dossiers:,}, "
                f"worker RSS up to {rss:,.0f} MiB"
            )

        concurrency = self.args.concurrency
        seconds = max(600.0, batch / MIN_OPEN_RATE)
        run = LoadRun(f"opening {batch:,} dossiers", concurrency, batch, seconds)
        async with http_session(concurrency) as http, _background(watch()):
            deposit = post_json(
                http, f"{self.system.base_url}/api/v1/requests", synthetic.deposit_body
            )

            async def call(index: int) -> tuple[str, str] | None:
                await flowing.wait()
                return await deposit(opened + index)

            await self._measure(run, call, line)
        return run

    async def _sizes(self, pool: asyncpg.Pool, level: Level) -> None:
        """Memory and storage with every timer of the level pending."""
        level.rss = self._memory()
        level.temporal_db = sum(
            path.stat().st_size
            for path in (self.data_dir / "temporal.db", self.data_dir / "temporal.db-wal")
            if path.exists()
        )
        row = await pool.fetchrow(
            """SELECT pg_database_size(current_database()) AS whole,
                      pg_total_relation_size('dossier.dossiers')
                      + pg_total_relation_size('dossier.timeline') AS read_model"""
        )
        level.pg_database, level.pg_read_model = int(row["whole"]), int(row["read_model"])
        mib = scale_report.MIB
        say(
            "  with every timer pending: "
            + ", ".join(f"{name} RSS {value / mib:,.0f} MiB" for name, value in level.rss.items())
            + f"; Temporal database {level.temporal_db / mib:,.0f} MiB, PostgreSQL "
            f"{level.pg_database / mib:,.0f} MiB (read model {level.pg_read_model / mib:,.0f})"
        )

    async def _timers(
        self, pool: asyncpg.Pool, level: Level, first: datetime, last: datetime
    ) -> None:
        """Wait for the level's R3 warnings and breaches, then read how late each fired."""
        opening = level.opening.elapsed if level.opening else 0.0
        commitment = Commitment(level.hours, level.fraction)
        dues = await pool.fetch(
            f"""SELECT id, received_at, first_response_due FROM dossier.dossiers
                WHERE {_OPEN_SQL} AND received_at BETWEEN $1 AND $2""",
            first,
            last,
        )
        if not dues:
            return
        warn_at = {
            r["id"]: commitment.warning_at(
                self.calendar, r["received_at"], r["first_response_due"]
            ).astimezone(UTC)
            for r in dues
        }
        final = max(r["first_response_due"] for r in dues)
        deadline = final + timedelta(seconds=timer_grace(opening))
        say(
            f"▸ R3 timers of the level: {len(dues):,} warnings due from "
            f"{min(warn_at.values()):%H:%M:%S} to {max(warn_at.values()):%H:%M:%S}, breaches "
            f"until {final:%H:%M:%S} (waiting until {deadline:%H:%M:%S} at most)"
        )
        counts = """SELECT
            (SELECT count(*) FROM dossier.staff_notices
              WHERE kind = 'first_response_warning' AND created_at >= $1) AS warned,
            (SELECT count(*) FROM dossier.breaches WHERE breached_at >= $1) AS breached"""
        rows: list[asyncpg.Record] = []
        while True:
            now = datetime.now(UTC)
            found = await pool.fetchrow(counts, first)
            warned, breached = int(found["warned"]), int(found["breached"])
            if (warned >= len(dues) and breached >= len(dues)) or now >= deadline:
                rows = await pool.fetch(_FIRED_SQL, [r["id"] for r in dues])
                if all(r["warned"] and r["breached_at"] for r in rows) or now >= deadline:
                    break
            due = sum(1 for at in warn_at.values() if at <= now)
            rss = self.peak.get("worker", 0) / scale_report.MIB
            say(
                f"  {now:%H:%M:%S}  warnings noticed {warned:,}/{len(dues):,} ({due:,} due), "
                f"breaches {breached:,}/{len(dues):,}; worker RSS up to {rss:,.0f} MiB"
            )
            await asyncio.sleep(TICK_S)
        now = datetime.now(UTC)
        level.warnings = Lateness.of([(warn_at[r["id"]], r["warned"]) for r in rows], now)
        level.notices = Lateness.of([(warn_at[r["id"]], r["noticed"]) for r in rows], now)
        level.breaches = Lateness.of(
            [(r["first_response_due"], r["breached_at"]) for r in rows], now
        )
        level.warned_while_opening = sum(1 for at in warn_at.values() if at < last)
        for name, late in (("warning", level.warnings), ("breach", level.breaches)):
            say(f"  {name} late by p50 / p99 / max: {late.text()}")

    async def _reads(self, pool: asyncpg.Pool, level: Level, token: str) -> None:
        """Each read's capacity (a short closed loop), then an open loop at READ_SHARE of it
        (at most --read-rate), latency from the scheduled instant."""
        assert self.system is not None
        say(f"▸ Read side with {level.open_dossiers:,} open and {level.closed:,} closed dossiers")
        ids = [
            str(r["id"])
            for r in await pool.fetch(
                f"SELECT id FROM dossier.dossiers WHERE {_OPEN_SQL} ORDER BY random() LIMIT 1000"
            )
        ]
        api = f"{self.system.base_url}/api/v1"
        auth = {"Authorization": f"Bearer {token}"}
        searches = [quote(q) for q in synthetic.SEARCHES]
        async with http_session(OPEN_CONNECTIONS) as http:
            reads: list[tuple[str, str, Call]] = [
                ("queue", "Queue `GET /api/v1/queue` (the whole queue: the API has no page)",
                 get_ok(http, lambda _: f"{api}/queue", auth)),
                ("dossier", "A dossier `GET /api/v1/dossiers/{id}` (1,000 open ones in turn)",
                 get_ok(http, lambda i: f"{api}/dossiers/{ids[i % len(ids)]}", auth)),
                ("dashboard", "Dashboard `GET /api/v1/reports/activity?weeks=8`",
                 get_ok(http, lambda _: f"{api}/reports/activity?weeks=8", auth)),
                ("search", f"Search `GET /api/v1/dossiers?q=…` ({len(searches)} queries in turn)",
                 get_ok(http, lambda i: f"{api}/dossiers?q={searches[i % len(searches)]}", auth)),
            ]  # fmt: skip
            for number, (operation, label, call) in enumerate(reads):
                capacity = LoadRun(f"{operation} capacity", READ_CONCURRENCY, 10**9, CAPACITY_S)
                await self._measure(capacity, call, unit="answered")
                read = Read(operation, label, capacity)
                level.reads.append(read)
                if capacity.ok:
                    rate = min(self.args.read_rate, READ_SHARE * capacity.rate)
                    share = rate / capacity.rate
                    first = 1_000_000 * (number + 1)
                    seconds = self.args.read_seconds
                    read.run = await self._open_run(operation, call, rate, seconds, share, first)

    # --- background readings -------------------------------------------------------------------

    def _memory(self) -> dict[str, int]:
        """RSS of the worker, the services and the Temporal server, bytes."""
        pids: dict[str, int] = {}
        if self.system is not None:
            for name, child in (("worker", self.system.worker), ("services", self.system.sut)):
                if child.process is not None:
                    pids[name] = child.process.pid
        for pid in cpu.children_named("temporal")[:1]:
            pids["temporal"] = pid
        return {name: cpu.resident_bytes(pid) for name, pid in pids.items()}

    async def _sample_memory(self) -> None:
        while True:
            for name, value in (await asyncio.to_thread(self._memory)).items():
                self.peak[name] = max(self.peak.get(name, 0), value)
            await asyncio.sleep(TICK_S)

    async def _empty_mailbox(self) -> None:
        while True:
            await asyncio.sleep(MAIL_CLEAR_S)
            self.stack.mail.clear()

    def _count_others(self) -> None:
        if self.window is None:
            return
        (before, since), self.window = self.window, None
        self.others_s += cpu.used(before, cpu.snapshot()).get(cpu.OTHERS, 0.0)
        self.counted_s += time.perf_counter() - since

    def _busy(self) -> None:
        """What other processes on the machine took of its CPU while the system ran."""
        available = self.counted_s * _cpus()
        if available <= 0:
            return
        share = self.others_s / available
        line = (
            f"other processes on the machine used {self.others_s:,.0f} CPU-seconds of the "
            f"{available:,.0f} available while the system under test ran ({share:.0%})"
        )
        self.out.notes.append(line)
        if share >= BUSY_SHARE:
            self.out.busy = line + "; the figures are not those of a quiet machine."


_FIRED_SQL = """
SELECT d.id, d.first_response_due, b.breached_at,
       (SELECT min(t.at) FROM dossier.timeline t
         WHERE t.dossier_id = d.id AND t.kind = 'first_response_warning') AS warned,
       (SELECT min(n.created_at) FROM dossier.staff_notices n
         WHERE n.dossier_id = d.id AND n.kind = 'first_response_warning') AS noticed
FROM dossier.dossiers d LEFT JOIN dossier.breaches b ON b.dossier_id = d.id
WHERE d.id = ANY($1::uuid[])
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--levels",
        type=scale_report.parse_levels,
        default=list(DEFAULT_LEVELS),
        help="open dossiers at each level, increasing (1000,10000,100000 or 1k,10k,100k)",
    )
    p.add_argument(
        "--closed", type=int, default=1_000_000, help="synthetic closed dossiers in the read model"
    )
    p.add_argument("--concurrency", type=int, default=8, help="callers of the opening loop")
    p.add_argument(
        "--rate-guess",
        type=float,
        default=20.0,
        help="dossiers/s expected at the first level (later levels use the measured rate)",
    )
    p.add_argument(
        "--warning-fraction",
        type=float,
        default=0.75,
        help="FIRST_RESPONSE_WARNING_FRACTION of the system under test",
    )
    p.add_argument("--read-rate", type=float, default=10.0, help="most calls/s per read")
    p.add_argument("--read-seconds", type=float, default=20.0, help="each read's open loop")
    p.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    return p


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.closed < 0 or args.concurrency < 1 or not 0 < args.warning_fraction < 1:
        sys.exit("--closed must be ≥ 0, --concurrency ≥ 1, --warning-fraction between 0 and 1")
    os.chdir(ROOT)
    machine = report.machine()
    scale = run_harness(lambda: Scale(args))
    out = scale.out
    out.command = _command(argv, "bench.scale", "bench-scale")
    rate = scale.levels[-1].open_rate if scale.levels else math.nan
    if rate > 0:
        out.estimates = estimates(rate, args.warning_fraction, args.read_seconds)
    output = args.output if args.output.is_absolute() else ROOT / args.output
    stamp = machine.date.strftime("%Y%m%d-%H%M")
    folder = output.parent / "benchmarks"
    for name, svg in (
        (f"scale-memory-{stamp}.svg", scale_report.memory_chart(scale.levels)),
        (f"scale-latency-{stamp}.svg", scale_report.latency_chart(scale.levels)),
    ):
        out.charts.append(str(charts.write(folder, name, svg).relative_to(output.parent)))
    say(f"\nScale run ({machine.line()}):")
    for level in scale.levels:
        say(f"\n  {level.open_dossiers:,} open dossiers:\n{scale_report.plain(level)}")
    for line in out.estimates:
        say(f"  {line}")
    for note in out.notes:
        say(f"  observed: {note}")
    report.write(
        output, scale_report.section(out, machine), report.SCALE_HEADING,
        report.SCALE_MARKER,
    )  # fmt: skip
    say(f"\n▸ Written to {output}")


if __name__ == "__main__":
    main()
