"""`assistance simulate`'s options: they change the scenario; a scenario that cannot run is
refused with a French message and exit code 2, before any server starts."""

from __future__ import annotations

import argparse
from datetime import date

import pytest

from composition.cli import parser
from simulation.command import main, scenario_of


def args(*argv: str) -> argparse.Namespace:
    return parser().parse_args(["simulate", *argv])


def test_the_options_change_the_default_scenario() -> None:
    s = scenario_of(
        args("--weeks", "2", "--per-day", "80", "--technicians", "6", "--trainers", "1")
    )
    assert (s.weeks, s.per_day, s.staff.technicians, s.staff.trainers) == (2, 80.0, 6, 1)
    assert s.staff.absences[0].number == 1  # the first trainer's leave stays
    s = scenario_of(args("--start", "2033-01-03", "--seed", "7", "--developers", "2"))
    assert (s.start, s.seed, s.staff.developers, s.weeks) == (date(2033, 1, 3), 7, 2, 4)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--start", "2020-01-06"], "doit être dans le futur"),
        (["--start", "2033-01-04"], "doit être un lundi"),
        (["--technicians", "0"], "au moins un technicien"),
        (["--scenario", "/nonexistent/scenario.toml"], "scénario illisible"),
    ],
)
def test_a_scenario_that_cannot_run_is_refused_in_french(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args(*argv)) == 2
    assert message in capsys.readouterr().err
