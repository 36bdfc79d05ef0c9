"""The smallest team that keeps the commitments: a search over whole runs.

Two numbers are searched together: technicians, for the first responses within the
commitment (R3, engagement 1), and trainers, for trainings booked the same or the next
business day (R7, engagement 4). Each run of the scenario tries one team and tells both
figures, so one run moves both searches. Each is a bisection: from the scenario's own team,
doubling until a team passes, then halving the gap between the largest team known to fail
and the smallest known to pass. It assumes what a manager does: more people never make
things worse, and technicians do not change the trainings nor trainers the first responses
(each run checks both anyway, and the last run is the team answered).

Pure module: the runs are made by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

CEILING = 60  # no team this large passes: the target is out of reach for the scenario


@dataclass(frozen=True)
class Trial:
    """One run of the search."""

    technicians: int
    trainers: int
    first_responses: float | None  # % in time
    trainings: float | None  # % the same or the next business day
    technicians_ok: bool
    trainers_ok: bool
    seconds: float
    target: float
    answer: tuple[int, int] | None = None  # set on the last trial: the smallest team


class Bisection:
    """The smallest whole number that passes, `low` and up, by bisection."""

    def __init__(self, start: int, low: int, ceiling: int = CEILING) -> None:
        self.start = max(start, low)
        self.low = low
        self.ceiling = ceiling
        self.failing = low - 1  # the largest known to fail (low - 1: none yet)
        self.passing: int | None = None  # the smallest known to pass
        self.tried = False

    @property
    def done(self) -> bool:
        if self.passing is not None:
            return self.passing - self.failing <= 1
        return self.failing >= self.ceiling

    @property
    def answer(self) -> int | None:
        return self.passing if self.done else None

    def next(self) -> int:
        """The value to try next (the answer once done)."""
        if self.done:
            return self.passing if self.passing is not None else self.ceiling
        if not self.tried:
            return self.start
        if self.passing is None:
            return min(self.ceiling, max(2 * self.failing, self.failing + 1))
        return (self.failing + self.passing) // 2

    def record(self, value: int, ok: bool) -> None:
        self.tried = True
        if ok:
            self.passing = value if self.passing is None else min(self.passing, value)
        else:
            self.failing = max(self.failing, value)


class Search:
    def __init__(self, technicians: int, trainers: int, *, trainers_needed: bool) -> None:
        self.technicians = Bisection(technicians, low=1)
        # with no advanced-usage request, no trainer is needed: nothing to search
        self.trainers = Bisection(trainers, low=0 if not trainers_needed else 1)
        if not trainers_needed:
            self.trainers.record(0, True)

    @property
    def done(self) -> bool:
        return self.technicians.done and self.trainers.done

    def next(self) -> tuple[int, int] | None:
        """The team to run next, None once both searches are done."""
        if self.done:
            return None
        return self.technicians.next(), self.trainers.next()

    def record(self, team: tuple[int, int], technicians_ok: bool, trainers_ok: bool) -> None:
        if not self.technicians.done:
            self.technicians.record(team[0], technicians_ok)
        if not self.trainers.done:
            self.trainers.record(team[1], trainers_ok)

    @property
    def answer(self) -> tuple[int, int] | None:
        """The smallest team, once found; None while searching or when out of reach."""
        t, f = self.technicians.answer, self.trainers.answer
        return (t, f) if t is not None and f is not None else None


def passes(value: float | None, target: float) -> bool:
    """A figure meets its target; no figure (nothing to count) passes."""
    return value is None or value >= target - 1e-9
