"""The search for the smallest team: bisection on whole numbers, both searches in step."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from simulation.staffing import CEILING, Bisection, Search, passes


def run_bisection(start: int, threshold: int, low: int = 1) -> tuple[int | None, list[int]]:
    b = Bisection(start, low=low)
    tried = []
    while not b.done:
        value = b.next()
        tried.append(value)
        b.record(value, value >= threshold)
    return b.answer, tried


@given(start=st.integers(1, 30), threshold=st.integers(1, CEILING))
def test_bisection_finds_the_smallest_passing_value_from_any_start(
    start: int, threshold: int
) -> None:
    answer, tried = run_bisection(start, threshold)
    assert answer == threshold
    assert len(tried) == len(set(tried))  # never the same team twice
    assert len(tried) <= 14


def test_bisection_from_four_with_five_needed() -> None:
    assert run_bisection(4, 5) == (5, [4, 8, 6, 5])
    assert run_bisection(4, 3) == (3, [4, 2, 3])
    assert run_bisection(4, 4) == (4, [4, 2, 3])


def test_a_target_out_of_reach_has_no_answer() -> None:
    answer, tried = run_bisection(4, CEILING + 1)
    assert answer is None
    assert tried[-1] == CEILING


def test_both_searches_move_with_each_run_and_stop_together() -> None:
    search = Search(4, 2, trainers_needed=True)
    runs = []
    while (team := search.next()) is not None:
        runs.append(team)
        search.record(team, technicians_ok=team[0] >= 6, trainers_ok=team[1] >= 1)
    assert search.answer == (6, 1)
    assert runs == [(4, 2), (8, 1), (6, 1), (5, 1)]


def test_no_trainer_is_searched_without_advanced_usage_requests() -> None:
    search = Search(3, 2, trainers_needed=False)
    assert search.next() == (3, 0)
    search.record((3, 0), technicians_ok=True, trainers_ok=True)
    assert search.next() == (1, 0)


def test_a_figure_with_nothing_to_count_passes() -> None:
    assert passes(None, 100)
    assert passes(100.0, 100)
    assert not passes(99.9, 100)
