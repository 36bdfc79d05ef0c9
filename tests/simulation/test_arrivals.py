"""The arrival model: seeded, a week's volume, the Monday peak, the lunch dip, the channels."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from simulation.arrivals import arrivals, hourly_rates, pick, poisson, request
from simulation.scenario import Peak, Scenario

BASE = Scenario(start=date(2032, 6, 7), weeks=4, per_day=100, closed_days=())


def test_the_same_seed_gives_the_same_requests_and_another_seed_others() -> None:
    first, again = arrivals(BASE), arrivals(BASE)
    assert first == again
    assert arrivals(replace(BASE, seed=17)) != first


def test_the_expected_volume_of_a_week_is_per_day_times_five() -> None:
    calendar = BASE.calendar()
    week = [r for start, r in hourly_rates(replace(BASE, weeks=1), calendar)]
    assert round(sum(week), 6) == 500.0
    drawn = len(arrivals(replace(BASE, weeks=8)))
    assert 3800 < drawn < 4200  # 4000 expected; a Poisson count within 3 % at this size


def test_monday_brings_the_peak_the_lunch_hour_a_dip_and_the_weekend_little() -> None:
    calendar = BASE.calendar()
    rates = dict(hourly_rates(BASE, calendar))
    local = {at.astimezone(calendar.tz): r for at, r in rates.items()}
    by_day: Counter[date] = Counter()
    for at, r in local.items():
        by_day[at.date()] += r
    monday, wednesday, saturday = date(2032, 6, 7), date(2032, 6, 9), date(2032, 6, 12)
    assert by_day[monday] > by_day[wednesday] * 1.3
    assert by_day[saturday] < by_day[wednesday] / 5
    hour = {at.hour: r for at, r in local.items() if at.date() == wednesday}
    assert hour[12] < hour[11] / 2 and hour[12] < hour[14] / 2


def test_a_public_holiday_counts_as_a_saturday_and_a_peak_multiplies_its_day() -> None:
    s = replace(BASE, start=date(2032, 7, 12), weeks=1)  # Wednesday 14 July: national day
    calendar = s.calendar()
    by_day: Counter[date] = Counter()
    for at, r in hourly_rates(s, calendar):
        by_day[at.astimezone(calendar.tz).date()] += r
    assert by_day[date(2032, 7, 14)] == by_day[date(2032, 7, 17)]  # like the Saturday
    peaked = replace(s, peaks=(Peak(date(2032, 7, 15), date(2032, 7, 15), 2.0),))
    doubled: Counter[date] = Counter()
    for at, r in hourly_rates(peaked, calendar):
        doubled[at.astimezone(calendar.tz).date()] += r
    assert doubled[date(2032, 7, 15)] == 2 * by_day[date(2032, 7, 15)]
    assert doubled[date(2032, 7, 16)] == by_day[date(2032, 7, 16)]


def test_nobody_phones_while_the_centre_is_closed() -> None:
    calendar = BASE.calendar()
    drawn = arrivals(BASE)
    calls = [a for a in drawn if a.channel == "phone"]
    assert calls and all(calendar.is_open(a.at) for a in calls)
    closed = [a for a in drawn if not calendar.is_open(a.at)]
    assert closed and {a.channel for a in closed} == {"web", "mail"}


def test_a_request_holds_the_same_work_whatever_the_team() -> None:
    calendar = BASE.calendar()
    at = BASE.begin + timedelta(hours=10)
    one = request(BASE, calendar, 42, at)
    other = request(BASE.with_team(technicians=9, trainers=5), calendar, 42, at)
    assert one == other
    assert request(BASE, calendar, 43, at) != one


def test_the_shares_of_kinds_are_drawn_as_configured() -> None:
    kinds = Counter(a.kind for a in arrivals(replace(BASE, weeks=8)))
    total = sum(kinds.values())
    assert abs(kinds["usage"] / total - 0.65) < 0.03
    assert abs(kinds["bug"] / total - 0.15) < 0.02


@settings(max_examples=30, deadline=None)
@given(mean=st.floats(min_value=0.1, max_value=80))
def test_poisson_draws_have_the_mean_they_are_asked(mean: float) -> None:
    rng = random.Random(7)
    draws = [poisson(rng, mean) for _ in range(3000)]
    assert min(draws) >= 0
    assert abs(statistics.fmean(draws) - mean) < 4 * (mean / 3000) ** 0.5 + 0.02


def test_pick_follows_the_shares_and_never_picks_a_zero_share() -> None:
    rng = random.Random(3)
    drawn = Counter(pick(rng, {"a": 3, "b": 1, "c": 0}) for _ in range(8000))
    assert drawn["c"] == 0
    assert 2.7 < drawn["a"] / drawn["b"] < 3.3
