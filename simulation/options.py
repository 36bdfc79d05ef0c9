"""The options of `assistance simulate` (argparse only: the `assistance` command builds its
parser without loading the simulation)."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

DEFAULT_HTML = Path("data/simulation/rapport.html")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", type=Path, help="scenario file (TOML); default: the shipped one")
    p.add_argument("--weeks", type=int, help="weeks of arrivals")
    p.add_argument("--per-day", type=float, help="requests per business day (a week's / 5)")
    p.add_argument("--technicians", type=int)
    p.add_argument("--trainers", type=int)
    p.add_argument("--developers", type=int)
    p.add_argument("--drain-weeks", type=int, help="weeks the team goes on after the arrivals")
    p.add_argument("--start", type=date.fromisoformat, help="first Monday (YYYY-MM-DD)")
    p.add_argument("--seed", type=int)
    p.add_argument("--html", type=Path, default=DEFAULT_HTML, help="where the page is written")
    p.add_argument(
        "--find-staffing",
        action="store_true",
        help="search the smallest team keeping the targets (several runs)",
    )
    p.add_argument(
        "--target", type=float, default=100.0, help="first responses in time, %% (default 100)"
    )
    p.add_argument(
        "--training-target",
        type=float,
        default=100.0,
        help="trainings the same or the next business day, %% (default 100)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")
