"""`assistance simulate`: run a scenario (or search the smallest team), print the table, write
the HTML page. The options change the scenario file's values (the default scenario without
`--scenario`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import replace
from datetime import UTC, date, datetime

from simulation import report
from simulation.report import Run
from simulation.run import Outcome, Progress, SimulationError, simulate
from simulation.scenario import Scenario, ScenarioError, load
from simulation.staffing import Search, Trial, passes


def scenario_of(args: argparse.Namespace) -> Scenario:
    s = load(args.scenario)
    changes = {
        "weeks": args.weeks,
        "per_day": args.per_day,
        "drain_weeks": args.drain_weeks,
        "start": args.start,
        "seed": args.seed,
    }
    s = replace(s, **{k: v for k, v in changes.items() if v is not None})
    s = s.with_team(args.technicians, args.trainers)
    if args.developers is not None:
        s = replace(s, staff=replace(s.staff, developers=args.developers))
    return s


def main(args: argparse.Namespace) -> int:
    try:
        scenario = scenario_of(args)
        if scenario.begin <= datetime.now(UTC):
            raise ScenarioError(
                f"run.start ({scenario.start}) doit être dans le futur : le serveur de test "
                "démarre à l'heure réelle et son horloge ne fait qu'avancer"
            )
        return asyncio.run(_main(scenario, args))
    except (ScenarioError, SimulationError) as error:
        print(f"Simulation impossible : {error}", file=sys.stderr)
        return 2


async def _main(scenario: Scenario, args: argparse.Namespace) -> int:
    show = _Progress(quiet=args.quiet)
    trials: list[Trial] | None = None
    if args.find_staffing:
        outcome, trials = await find_staffing(scenario, args.target, args.training_target, show)
    else:
        outcome = await simulate(scenario, show)
    show.done()
    run = as_run(outcome)
    args.html.parent.mkdir(parents=True, exist_ok=True)
    args.html.write_text(report.html(run, trials), encoding="utf-8")
    print(report.terminal(run, trials, args.html))
    return 3 if report.problems(outcome.report) else 0


async def find_staffing(
    scenario: Scenario, target: float, training_target: float, show: _Progress
) -> tuple[Outcome, list[Trial]]:
    """Runs until the smallest team is known; the last outcome is that team's."""
    search = Search(
        scenario.staff.technicians,
        scenario.staff.trainers,
        trainers_needed=scenario.arrivals.kinds.get("advanced_usage", 0) > 0,
    )
    trials: list[Trial] = []
    outcomes: dict[tuple[int, int], Outcome] = {}
    while (team := search.next()) is not None:
        show.label = f"{team[0]} tech. · {team[1]} form."
        outcome = await simulate(scenario.with_team(*team), show)
        outcomes[team] = outcome
        total = outcome.report.total
        technicians_ok = passes(total.in_time_pct, target)
        trainers_ok = passes(total.trainings_pct, training_target)
        search.record(team, technicians_ok, trainers_ok)
        trials.append(
            Trial(
                team[0],
                team[1],
                total.in_time_pct,
                total.trainings_pct,
                technicians_ok,
                trainers_ok,
                outcome.wall_seconds,
                target,
            )
        )
        show.line(report.staffing_text(trials[-1:]).splitlines()[1].strip())
    answer = search.answer
    if answer is None:
        last = trials[-1]
        return outcomes[(last.technicians, last.trainers)], trials
    if answer not in outcomes:  # the two answers were found in different runs: run it
        show.label = f"{answer[0]} tech. · {answer[1]} form."
        outcome = await simulate(scenario.with_team(*answer), show)
        outcomes[answer] = outcome
        total = outcome.report.total
        trials.append(
            Trial(
                answer[0],
                answer[1],
                total.in_time_pct,
                total.trainings_pct,
                passes(total.in_time_pct, target),
                passes(total.trainings_pct, training_target),
                outcome.wall_seconds,
                target,
            )
        )
    trials[-1] = replace(trials[-1], answer=answer)
    return outcomes[answer], trials


def as_run(outcome: Outcome) -> Run:
    return Run(
        scenario=outcome.scenario,
        report=outcome.report,
        arrivals=outcome.arrivals,
        commands=outcome.stats.commands,
        signals=outcome.stats.signals,
        refused=dict(outcome.stats.refused),
        calls=outcome.stats.calls,
        calls_given_up=outcome.stats.calls_given_up,
        waits_for_timers=outcome.stats.waits_for_timers,
        wall_seconds=outcome.wall_seconds,
        cpu_seconds=outcome.cpu_seconds,
        server_cpu_seconds=outcome.server_cpu_seconds,
        finished_at=datetime.now(UTC),
    )


class _Progress:
    """One line on stderr, rewritten in place on a terminal; a line a simulated day else."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.label = ""
        self._last_day: date | None = None
        self._started = time.monotonic()

    def __call__(self, p: Progress) -> None:
        if self.quiet:
            return
        local = p.now.astimezone(report.french.PARIS)
        if not self.tty and local.date() == self._last_day:
            return
        self._last_day = local.date()
        share = (p.now - p.begin) / (p.end - p.begin)
        text = (
            f"▸ {self.label + ' · ' if self.label else ''}{report.french.moment_short(p.now)} "
            f"({share:.0%}) · {p.deposits}/{p.expected} demandes · {p.open} ouvertes · "
            f"{p.queued} en file · {report.elapsed(p.elapsed)}"
        )
        if self.tty:
            print(f"\r\033[K{text}", end="", file=sys.stderr, flush=True)
        else:
            print(text, file=sys.stderr, flush=True)

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self.tty:
            print("\r\033[K", end="", file=sys.stderr)
        print(f"  {text}", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty and not self.quiet:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def run_and_exit(args: argparse.Namespace) -> None:
    """The command's end: the exit code without the interpreter's teardown, which the
    Temporal SDK's threads can abort (temporalio/sdk-python#300: "PyGILState_Release")."""
    code = main(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
