"""Orchestration of `python -m bench`: stack, system under test, load, baselines, report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from temporalio.client import Client

from assistance import db
from assistance.directory import Role
from bench import bare_smtp, bare_temporal, charts, cpu, report
from bench.load import Call, LoadRun, deposit_body, get_ok, http_session, post_json
from bench.mail import SmtpSessions
from bench.openloop import OpenLoopRun
from bench.procs import Child, wait_http_ok, wait_log_line
from composition.app import load_demo, migrate
from composition.parts import SERVICES
from deploy.local.stack import Endpoints, LocalStack, StackConfig, create_database, free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TICK_S = 3.0  # progress lines
POLL_S = 0.2  # drain polling
WARMUP_DRAIN_S = 15.0
WARMUP_CAP_S = 15.0
BARE_STARTS_MAX = 1000  # enough for a stable rate at ~100-150 starts/s
OPEN_SHARES = (0.25, 0.5, 0.75)  # open-loop rates, as fractions of the measured capacity
CAPACITY_S = 8.0  # the closed loop measuring a read's capacity
OPEN_CONNECTIONS = 400  # the open loop's connection pool: calls never queue in the client
MAIL_CONCURRENCY = 10


H = TypeVar("H", bound="Harness")


def say(line: str) -> None:
    print(line, flush=True)


@dataclass
class System:
    """The system under test as two processes: the services, and the Temporal worker."""

    sut: Child
    worker: Child
    port: int
    mail_port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Harness:
    """The real stack in a scratch directory, the processes it starts (always stopped), and
    measured runs with a progress line every few seconds."""

    poll_s = POLL_S

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="assistance-bench-"))
        self.stack = LocalStack(
            StackConfig(data_dir=self.data_dir, persistent=True, ui=False), progress=say
        )
        self.children: list[Child] = []
        self.failed = False
        self.closing = False
        self.keep_logs = False  # set when the system under test logged errors
        self.components = ""  # what the stack runs, and their versions
        self.code = ""  # the commit measured

    async def run(self) -> None:
        """Start the stack, make the measured runs (`_runs`), stop everything."""
        say(f"▸ Stack in {self.data_dir} (Temporal SQLite WAL, NATS file store, PostgreSQL)…")
        try:
            ends = await self.stack.start()
            self.components = await self._components(ends)
            self.code = await _code_version()
            await self._runs(ends)
        except BaseException:
            self.failed = True
            raise
        finally:
            await self.close()

    async def _runs(self, ends: Endpoints) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        self.closing = True
        say("▸ Stopping…")
        for child in reversed(self.children):
            with contextlib.suppress(Exception):
                await child.stop()
        self.children.clear()
        await self.stack.stop()
        if self.failed or self.keep_logs:
            say(f"  logs kept in {self.data_dir}")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    async def spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> Child:
        log = self.data_dir / f"{re.sub(r'[^a-z0-9]+', '-', name.lower())}.log"
        child = Child(name, argv, log, env, cwd)
        self.children.append(child)
        await child.start()
        return child

    async def stop(self, child: Child) -> None:
        await child.stop()
        self.children.remove(child)

    async def _start_system(
        self, ends: Endpoints, url: str, task_queue: str, settings: dict[str, str] | None = None
    ) -> System:
        """`assistance run` for every service, and the worker, configured only through their
        environment (`settings` on top), from the scratch directory; ready when both answer
        /readyz."""
        port = free_port()
        mail_port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "TEMPORAL_ADDRESS": ends.temporal_address,
            "TEMPORAL_TASK_QUEUE": task_queue,
            "NATS_URL": ends.nats_url,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(port),
            "PUBLIC_URL": f"http://127.0.0.1:{port}",
            "SMTP_HOST": ends.smtp_host,
            "SMTP_PORT": str(ends.smtp_port),
            "MAIL_LISTEN_PORT": str(mail_port),
            "MAIL_LMTP_PORT": "0",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "",
            "LOG_LEVEL": "WARNING",
            **(settings or {}),
        }
        services = [arg for name in SERVICES for arg in ("--target", name)]
        argv = [str(BIN / "assistance"), "run", *services]
        # From the scratch directory: no developer `.env` is read, nothing lands in the repo.
        sut = await self.spawn("assistance run", argv, env, cwd=self.data_dir)
        worker_port = free_port()
        worker_env = {**env, "HTTP_PORT": str(worker_port), "MAIL_LISTEN_PORT": "0"}
        worker_argv = [str(BIN / "assistance"), "run", "--target", "worker"]
        worker = await self.spawn("assistance worker", worker_argv, worker_env, self.data_dir)
        took = await wait_http_ok(sut, f"http://127.0.0.1:{port}/readyz")
        await wait_http_ok(worker, f"http://127.0.0.1:{worker_port}/readyz")
        say(f"  ready (GET /readyz = 200) after {took:.1f} s")
        return System(sut, worker, port, mail_port)

    async def _stop_system(self, system: System) -> None:
        await self.stop(system.sut)
        await self.stop(system.worker)

    async def _measure(
        self,
        run: LoadRun,
        call: Callable[[int], Awaitable[Any]],
        extra: Callable[[], Awaitable[str]] | None = None,
        unit: str = "accepted",
    ) -> LoadRun:
        say(
            f"▸ {run.name}: {run.total} calls, {run.concurrency} concurrent, "
            f"cap {run.seconds:.0f} s"
        )

        async def tick() -> None:
            while True:
                await asyncio.sleep(TICK_S)
                now = time.perf_counter() - run.started
                more = f", {await extra()}" if extra is not None else ""
                say(
                    f"  {now:5.1f} s  sent {run.sent}, {unit} {run.ok}, "
                    f"failed {run.failed}, {run.ok / max(now, 1e-9):,.0f}/s{more}"
                )

        async with _background(tick()):
            await run.run(call)
        say(
            f"  done: {run.ok}/{run.sent} {unit} in {run.elapsed:.1f} s → {run.rate:,.0f}/s, "
            f"p50 {run.latency_ms(50):,.0f} ms, p99 {run.latency_ms(99):,.0f} ms"
            + (f", {run.failed} failed: {dict(run.failures)}" if run.failed else "")
            + (" (time cap hit)" if run.capped else "")
        )
        for sample in run.samples:
            say(f"    e.g. {sample}")
        return run

    async def _open_run(
        self, operation: str, call: Call, rate: float, seconds: float, share: float, first: int
    ) -> OpenLoopRun:
        """`call` at a constant `rate` for `seconds` (open loop), with its result line."""
        run = OpenLoopRun(operation, rate, seconds, share)
        say(f"  {operation} at {share:.0%}: {rate:,.1f}/s for {run.seconds:.0f} s…")
        await run.run(call, first_index=first)
        say(
            f"    {run.ok}/{run.sent} ok, p50 {run.latency_ms(50):,.0f} ms, "
            f"p99 {run.latency_ms(99):,.0f} ms, p99.9 {run.latency_ms(99.9):,.0f} ms, "
            f"at most {run.most_in_flight} in flight"
            + (f", {run.failed} failed: {dict(run.failures)}" if run.failed else "")
        )
        for sample in run.samples:
            say(f"    e.g. {sample}")
        return run

    async def _wait_drained(
        self,
        probe: Probe,
        target: int,
        cap: float,
        label: str,
        run: LoadRun | None = None,
    ) -> report.Drain:
        """Poll until no start_dossier row is pending, Temporal counts `target` dossier workflows
        and the read model holds `target` dossiers; times are taken from the run's ends."""
        drain = report.Drain(target=target, cap=cap)
        begin = time.perf_counter()
        first = run.started if run is not None else begin
        load_end = run.finished if run is not None else begin
        say(f"▸ {label}: waiting for {target} live workflows and projected dossiers")
        next_tick = begin + TICK_S
        while time.perf_counter() - begin < cap:
            now = time.perf_counter()
            pending, dossiers = await probe.pending_and_dossiers()
            drain.last_pending_starts, drain.last_dossiers = pending, dossiers
            if pending == 0 and drain.outbox_after_load is None:
                drain.outbox_after_load = now - load_end
            if drain.outbox_after_load is not None and drain.workflows_after_load is None:
                drain.last_workflows = await probe.workflows()
                if drain.last_workflows >= target:
                    at = time.perf_counter()
                    drain.workflows_after_load = at - load_end
                    drain.live_from_start = at - first
            if dossiers >= target and drain.projection_after_load is None:
                drain.projection_after_load = now - load_end
            if drain.workflows_after_load is not None and drain.projection_after_load is not None:
                break
            if now >= next_tick:
                next_tick = now + TICK_S
                if drain.workflows_after_load is None:
                    drain.last_workflows = await probe.workflows()
                say(
                    f"  {now - load_end:5.1f} s after load: start_dossier pending {pending}, "
                    f"workflows {drain.last_workflows}/{target}, dossiers {dossiers}/{target}"
                )
            await asyncio.sleep(self.poll_s)
        say(
            f"  outbox drained {_s(drain.outbox_after_load)}, workflows counted "
            f"{_s(drain.workflows_after_load)}, read model {_s(drain.projection_after_load)}"
            " after the load"
            + (
                f"; every dossier live {_s(drain.live_from_start)} from the first request"
                if run
                else ""
            )
        )
        return drain

    async def _components(self, ends: Endpoints) -> str:
        conn = await asyncpg.connect(ends.database_url)
        try:
            pg = await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()
        try:
            version = await asyncio.create_subprocess_exec(
                str(BIN / "temporal"), "--version", stdout=subprocess.PIPE
            )
            out, _ = await asyncio.wait_for(version.communicate(), 10)
            text = out.decode()
            cli = re.search(r"version ([\w.-]+)", text)
            server = re.search(r"Server ([\w.-]+)", text)
            temporal = f"CLI {cli[1] if cli else '?'}, server {server[1] if server else '?'}"
        except (OSError, TimeoutError):
            temporal = "version unknown"
        return (
            f"Temporal dev server ({temporal}) on a SQLite file, WAL, synchronous=normal; "
            f"NATS JetStream, file store, sync always; PostgreSQL {pg}, embedded, fsync on"
        )


class Bench(Harness):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__()
        self.args = args
        self.fig = report.Figures(concurrency=args.concurrency, requests=args.requests)
        starts = min(args.requests, BARE_STARTS_MAX)
        self.fig.load = (
            f"closed loop, {args.concurrency} concurrent, {args.requests} requests per run "
            f"({starts} for the start_workflow baseline), each run capped at {args.seconds:.0f} s "
            f"and preceded by a warm-up of {min(args.requests, 2 * args.concurrency)} calls"
        )

    # --- the whole run -------------------------------------------------------------------------

    async def _runs(self, ends: Endpoints) -> None:
        self.fig.components, self.fig.code = self.components, self.code
        if not self.args.skip_baselines:
            await self._bare_insert(ends)
        await self._deposit(ends)
        if not self.args.skip_baselines:
            await self._bare_start(ends)

    # --- measured runs -------------------------------------------------------------------------

    def _load(self, name: str, total: int | None = None) -> LoadRun:
        return LoadRun(
            name,
            concurrency=self.args.concurrency,
            total=self.args.requests if total is None else total,
            seconds=self.args.seconds,
        )

    async def _warm_up(self, call: Callable[[int], Awaitable[Any]], label: str) -> LoadRun:
        warm = LoadRun(
            f"{label} warm-up",
            concurrency=self.args.concurrency,
            total=min(self.args.requests, 2 * self.args.concurrency),
            seconds=WARMUP_CAP_S,
        )
        await warm.run(lambda i: call(1_000_000 + i))
        say(f"  warm-up: {warm.ok}/{warm.sent} ok, {warm.failed} failed")
        return warm

    @contextlib.contextmanager
    def _cpu(self, label: str, per: Callable[[], int] | None = None) -> Iterator[None]:
        """Note the CPU seconds each component used while the block ran, and per unit of work
        (`per()`: e.g. the dossiers accepted) for the components of the stack."""
        before, started = cpu.snapshot(), time.perf_counter()
        yield
        spent = cpu.used(before, cpu.snapshot())
        if not spent:
            return
        wall = time.perf_counter() - started
        parts = ", ".join(f"{name} {sec:.1f}" for name, sec in spent.items() if sec >= 0.05)
        line = f"CPU seconds during the {label} ({wall:.1f} s wall × {_cpus()} CPUs): {parts}"
        count = per() if per is not None else 0
        if count:
            own = {k: v for k, v in spent.items() if k not in (cpu.OTHERS, cpu.GENERATOR)}
            each = ", ".join(
                f"{name} {sec / count * 1000:.0f}" for name, sec in own.items() if sec >= 0.05
            )
            line += f"; CPU ms per accepted dossier: {each}"
        say(f"  {line}")
        self.fig.notes.append(line)

    # --- baseline (a): FastAPI + one INSERT ------------------------------------------------------

    async def _bare_insert(self, ends: Endpoints) -> None:
        say("▸ Baseline (a): FastAPI + asyncpg single INSERT (uvicorn, separate process)")
        url = await create_database(ends.database_url, "bench_bare_insert")
        port = free_port()
        env = {**os.environ, "BENCH_DATABASE_URL": url}
        argv = [
            str(BIN / "python"), "-m", "uvicorn", "bench.bare_insert:app",
            "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        child = await self.spawn("bare insert app", argv, env)
        await wait_http_ok(child, f"http://127.0.0.1:{port}/healthz")
        base = f"http://127.0.0.1:{port}/api/v1/requests"
        async with http_session(self.args.concurrency) as http:
            call = post_json(http, base, deposit_body)
            await self._warm_up(call, "bare insert")
            with self._cpu("bare insert run"):
                self.fig.bare_insert = await self._measure(self._load("bare insert"), call)
        await self.stop(child)

    # --- baseline (b): start_workflow ----------------------------------------------------------

    async def _bare_start(self, ends: Endpoints) -> None:
        say("▸ Baseline (b): Temporal start_workflow, one client, worker in a separate process")
        queue = f"bench-noop-{uuid.uuid4().hex[:8]}"
        argv = [
            str(BIN / "python"), "-m", "bench.bare_temporal",
            "--address", ends.temporal_address, "--task-queue", queue,
        ]  # fmt: skip
        child = await self.spawn("bare temporal worker", argv)
        await wait_log_line(child, bare_temporal.READY)
        client = await Client.connect(ends.temporal_address)
        call = bare_temporal.start_call(client, queue, queue)
        await self._warm_up(call, "bare start_workflow")
        total = min(self.args.requests, BARE_STARTS_MAX)
        run = self._load("bare start_workflow", total)
        with self._cpu("bare start_workflow run"):
            self.fig.bare_start = await self._measure(run, call, unit="started")
        await self.stop(child)

    # --- the system under test -----------------------------------------------------------------

    async def _deposit(self, ends: Endpoints) -> None:
        say(
            "▸ System under test: the services (`assistance run --target <each service>`) and "
            "the Temporal worker (`assistance run --target worker`), two processes"
        )
        url = await create_database(ends.database_url, "assistance")
        await migrate(url)
        pool = await db.create_pool(url, 2)
        temporal = await Client.connect(ends.temporal_address)
        try:
            tokens = await load_demo(pool)
            queue = f"bench-dossiers-{uuid.uuid4().hex[:8]}"
            system = await self._start_system(ends, url, queue)
            probe = Probe(pool, temporal)
            base = f"{system.base_url}/api/v1/requests"
            async with http_session(self.args.concurrency) as http:
                call = post_json(http, base, deposit_body)
                warm = await self._warm_up(call, "deposit")
                await self._wait_drained(probe, warm.ok, WARMUP_DRAIN_S, "warm-up")
                run = self._load("deposit")
                with self._cpu("deposit run and its drain", lambda: run.ok):
                    self.fig.deposit = await self._measure(run, call, probe.outbox_line)
                    self.fig.drain = await self._wait_drained(
                        probe, warm.ok + run.ok, self.args.drain_seconds, "drain", run
                    )
            technician = next(token for _, role, token in tokens if role is Role.technician)
            if not self.args.skip_open_loop:
                await self._open_loop(system.base_url, probe, technician, run.rate)
            if not self.args.skip_mail:
                await self._mail(system.mail_port)
            notes = await _observations(pool, system.sut)
            self.keep_logs = any(note.startswith("system log") for note in notes)
            for note in notes:
                say(f"  observed: {note}")
            self.fig.notes += notes
            await self._stop_system(system)
        finally:
            await pool.close()

    # --- open loop: latency at a constant arrival rate ----------------------------------------

    async def _open_loop(
        self, base: str, probe: Probe, token: str, deposit_capacity: float
    ) -> None:
        """Each read's capacity by a short closed loop, then each operation at 25, 50 and 75 %
        of its capacity in an open loop; the deposits last, each rate from a drained system."""
        say(
            f"▸ Open loop: each operation at {', '.join(f'{s:.0%}' for s in OPEN_SHARES)} of its "
            f"capacity, {self.args.open_seconds:.0f} s per rate"
        )
        dossier = await probe.pool.fetchval(
            "SELECT id FROM dossier.dossiers ORDER BY received_at LIMIT 1"
        )
        auth = {"Authorization": f"Bearer {token}"}
        api = f"{base}/api/v1"
        reads: dict[str, Call]
        async with http_session(OPEN_CONNECTIONS) as http:
            reads = {
                "dossier read": get_ok(http, lambda _: f"{api}/dossiers/{dossier}", auth),
                "queue, first page": get_ok(http, lambda _: f"{api}/queue", auth),
                "search": get_ok(http, lambda _: f"{api}/dossiers?q=export%20FEC", auth),
            }
            for operation, call in reads.items():
                capacity = self._load(f"{operation} capacity")
                capacity.seconds = CAPACITY_S
                capacity.total = 1_000_000
                await self._measure(capacity, call, unit="answered")
                self.fig.capacity[operation] = capacity.rate
                for share in OPEN_SHARES:
                    await self._open_rate(operation, call, share, capacity.rate)
            self.fig.capacity["deposit"] = deposit_capacity
            deposit = post_json(http, f"{api}/requests", deposit_body)
            for number, share in enumerate(OPEN_SHARES):
                await self._open_rate("deposit", deposit, share, deposit_capacity, number)
                target = await probe.accepted()
                await self._wait_drained(probe, target, self.args.drain_seconds, "open-loop drain")

    async def _open_rate(
        self, operation: str, call: Call, share: float, capacity: float, number: int = 0
    ) -> OpenLoopRun:
        rate = max(share * capacity, 1.0)
        first = 2_000_000 + number * 100_000
        run = await self._open_run(operation, call, rate, self.args.open_seconds, share, first)
        self.fig.open_loop.append(run)
        return run

    # --- mail: accepted over SMTP, against a bare aiosmtpd -------------------------------------

    async def _mail(self, port: int) -> None:
        say(f"▸ Mail: customers' mails over SMTP, {MAIL_CONCURRENCY} sessions")
        to = "assistance@manao.eu"
        total = self.args.mail_requests
        bare_port = free_port()
        argv = [str(BIN / "python"), "-m", "bench.bare_smtp", "--port", str(bare_port)]
        child = await self.spawn("bare smtp", argv)
        await wait_log_line(child, bare_smtp.READY)
        for label, at in (("bare aiosmtpd", bare_port), ("system", port)):
            sessions = SmtpSessions("127.0.0.1", at, to, MAIL_CONCURRENCY)
            run = LoadRun(f"mail, {label}", MAIL_CONCURRENCY, total, self.args.seconds)
            try:
                with self._cpu(f"mail run ({label})"):
                    await self._measure(run, sessions.call(), unit="accepted")
            finally:
                await sessions.close()
            if label == "system":
                self.fig.mail = run
            else:
                self.fig.bare_mail = run
        await self.stop(child)


class Probe:
    """Cheap questions asked while draining: the outbox, the read model, Temporal's count.
    `dossiers` is the condition on the read model's rows that counts (all by default)."""

    def __init__(self, pool: asyncpg.Pool, temporal: Client, dossiers: str = "TRUE") -> None:
        self.pool = pool
        self.temporal = temporal
        self.dossiers = dossiers

    async def accepted(self) -> int:
        """The deposits accepted so far (web and mail): what the drain must reach."""
        return int(await self.pool.fetchval("SELECT count(*) FROM intake.requests"))

    async def pending_and_dossiers(self) -> tuple[int, int]:
        row = await self.pool.fetchrow(
            f"""SELECT (SELECT count(*) FROM bus.outbox WHERE source = 'intake'
                        AND kind = 'start_dossier' AND status = 'pending') AS pending,
                      (SELECT count(*) FROM dossier.dossiers WHERE {self.dossiers}) AS dossiers"""
        )
        return int(row["pending"]), int(row["dossiers"])

    async def workflows(self) -> int:
        counted = await self.temporal.count_workflows("WorkflowType='DossierWorkflow'")
        return int(counted.count)

    async def outbox_line(self) -> str:
        pending, dossiers = await self.pending_and_dossiers()
        return f"start_dossier pending {pending}, dossiers projected {dossiers}"


async def _observations(pool: asyncpg.Pool, sut: Child) -> list[str]:
    """What the system under test showed besides its speed: retries, errors in its log."""
    notes: list[str] = []
    retried = await pool.fetch(
        """SELECT source, kind, count(*) AS rows, max(attempts) AS most,
                  min(last_error) AS an_error
           FROM bus.outbox WHERE attempts > 1 OR last_error IS NOT NULL
           GROUP BY source, kind ORDER BY source, kind"""
    )
    for row in retried:
        notes.append(
            f"outbox `{row['source']}/{row['kind']}`: {row['rows']} rows needed more than one "
            f"attempt (up to {row['most']}); e.g. `{(row['an_error'] or '')[:160]}`"
        )
    records, exceptions = _log_summary(sut.log_text())
    for (level, text), count in records.most_common(3):
        notes.append(f"system log: {count} × {level} `{text}`")
    for text, count in exceptions.most_common(3):
        notes.append(f"system log: {count} × exception `{text}`")
    return notes


_RECORD = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ (WARNING|ERROR|CRITICAL) (\S+): (.*)$")
_CORE_RECORD = re.compile(r"^\S+Z\s+(WARN|ERROR)\s+(\S+?):\s+(.*)$")  # the SDK's Rust core
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Failure|Exit)\w*)(?::\s*(.*))?$")
_IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f-]{4,}|\b\d+\b")


def _log_summary(text: str) -> tuple[Counter[tuple[str, str]], Counter[str]]:
    """Warning/error records and exception lines, grouped once ids and numbers are masked."""
    records: Counter[tuple[str, str]] = Counter()
    exceptions: Counter[str] = Counter()
    for line in text.splitlines():
        line = _ANSI.sub("", line)
        if found := _RECORD.match(line) or _CORE_RECORD.match(line):
            level, logger, message = found.groups()
            records[level, f"{logger}: {_IDS.sub('…', message)[:140]}"] += 1
        elif found := _EXCEPTION.match(line):
            name, message = found.groups()
            exceptions[f"{name}: {_IDS.sub('…', message or '')[:140]}"] += 1
    return records, exceptions


async def _code_version() -> str:
    """The commit measured, and whether the working tree differed from it."""

    async def git(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            "git", *args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        out, _ = await process.communicate()
        return out.decode().strip() if process.returncode == 0 else ""

    try:
        commit = await git("rev-parse", "--short", "HEAD")
        changed = [
            line for line in (await git("status", "--porcelain")).splitlines() if line.strip()
        ]
    except OSError:
        return ""
    if not commit:
        return ""
    return commit + (f" plus uncommitted changes in {len(changed)} paths" if changed else "")


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


@contextlib.asynccontextmanager
async def _background(coro: Awaitable[None]) -> AsyncIterator[None]:
    task = asyncio.ensure_future(coro)
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait([task])  # unlike `await task`, never swallows our own cancellation


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--concurrency", type=int, default=50, help="callers in the closed loop")
    p.add_argument("--requests", type=int, default=3000, help="calls per measured run")
    p.add_argument("--seconds", type=float, default=30.0, help="time cap of each measured run")
    p.add_argument(
        "--drain-seconds",
        type=float,
        default=45.0,
        help="how long to wait, after the load, for every workflow and projection",
    )
    p.add_argument("--skip-baselines", action="store_true", help="measure the deposit only")
    p.add_argument("--open-seconds", type=float, default=10.0, help="length of each open-loop rate")
    p.add_argument("--skip-open-loop", action="store_true", help="no open-loop latency table")
    p.add_argument("--mail-requests", type=int, default=2000, help="mails per SMTP run")
    p.add_argument("--skip-mail", action="store_true", help="no SMTP rate")
    p.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    return p


def _command(argv: list[str], module: str = "bench", target: str = "bench") -> str:
    command = f"python -m {module}" + ("".join(f" {shlex.quote(a)}" for a in argv))
    return f"`make {target}` (`{command}`)" if os.environ.get("MAKELEVEL") else f"`{command}`"


def run_harness(make: Callable[[], H]) -> H:
    """`make().run()` on the stdlib loop (uvloop's subprocess_exec lacks the user/group the
    stack passes); Ctrl-C or SIGTERM stops everything it started, then exits."""

    async def main() -> H:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        harness = make()

        def interrupt() -> None:
            """Cancel the run; again each second, as a library may swallow one cancellation,
            until the clean shutdown has begun."""
            if harness.closing or task.done():
                return
            task.cancel()
            loop.call_later(1.0, interrupt)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, interrupt)
        await harness.run()
        return harness

    try:
        with asyncio.Runner() as runner:
            return runner.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.exit("interrupted; everything stopped")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.concurrency < 1 or args.requests < 1 or args.seconds <= 0:
        sys.exit("--concurrency, --requests and --seconds must be positive")
    os.chdir(ROOT)  # the apps are imported as `bench.*` by the child processes
    machine = report.machine()
    bench = run_harness(lambda: Bench(args))
    fig = bench.fig
    command = _command(argv)
    output = args.output if args.output.is_absolute() else ROOT / args.output
    if fig.open_loop:
        stamp = machine.date.strftime("%Y%m%d-%H%M")
        chart = charts.write(
            output.parent / "benchmarks",
            f"open-loop-{stamp}.svg",
            charts.open_loop_chart(fig.open_loop),
        )
        fig.charts.append(str(chart.relative_to(output.parent)))
    say(f"\nResults ({machine.line()}):\n{report.plain_table(fig)}")
    for note in fig.notes:
        say(f"  observed: {note}")
    report.write(output, report.section(fig, machine, command))
    say(f"\n▸ Written to {output}")
