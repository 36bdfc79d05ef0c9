"""The arrival model: when requests come in, by which channel, of which kind (seeded).

The rate of each local hour of the simulated weeks is

    per_day × 5 × (weekday weight / the week's weights) × (hour weight / the day's weights)
            × the peak factor of that day

so a week brings `per_day × 5` requests on average, weekend deposits included: a Monday
peak, a lunch dip, few deposits at night and on weekends. A business day the centre is
closed (a public holiday, a bridge) counts as a Saturday and takes the closed-day hours. The
count of each hour is drawn from a Poisson law, the instants uniformly within the hour.

Channels (R1): the phone only while the centre is open (nobody answers it otherwise; its share
goes to the site and mail then). Each request's kind, software and what will happen to it (a
question for the customer, a screen-sharing session, a known bug…, how long each step takes)
are drawn from its own random stream, seeded by the scenario's seed and its number: two runs
of one scenario with different teams see the same requests with the same work in them.

Pure module: no clock, no I/O.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from assistance.business_time import BusinessCalendar
from simulation.scenario import Scenario


@dataclass(frozen=True)
class Arrival:
    """One request, and the work it holds (drawn when it arrives)."""

    number: int  # 1, 2, … in order of arrival
    at: datetime
    channel: str  # web | mail | phone
    kind: str  # what the technician's diagnosis will say (R5)
    software: str
    # what happens to it
    information_request: bool  # usage: the technician asks the customer first
    screen_share: bool  # usage: answered in a screen-sharing session (R6)
    workaround: bool  # bug: a workaround exists (else the reason there is none, R8)
    known_bug: bool  # bug: joins a bug already reported, if there is one
    accepted: bool  # evolution: the product manager accepts it (R9)
    confirms: bool  # the customer confirms the resolution (else it closes by itself)
    # minutes at the desk
    take: float
    diagnose: float
    answer: float
    information: float
    screen: float
    workaround_minutes: float
    close: float
    call: float
    # business hours of the customer
    reply_hours: float
    confirm_hours: float


def hourly_rates(
    scenario: Scenario, calendar: BusinessCalendar
) -> Iterator[tuple[datetime, float]]:
    """Every local hour from the scenario's start to the end of its arrivals, with the mean
    number of requests expected in it."""
    profile = scenario.arrivals
    week = sum(profile.weekdays)
    open_hours, closed_hours = sum(profile.business_day_hours), sum(profile.closed_day_hours)
    weekly = scenario.per_day * 5
    for offset in range(scenario.weeks * 7):
        day = scenario.start + timedelta(days=offset)
        if calendar.is_business_day(day):
            share = profile.weekdays[day.weekday()] / week
            hours, total = profile.business_day_hours, open_hours
        else:
            weekday = day.weekday() if day.weekday() >= 5 else 5
            share = profile.weekdays[weekday] / week
            hours, total = profile.closed_day_hours, closed_hours
        factor = math.prod(p.factor for p in scenario.peaks if p.first <= day <= p.last)
        for hour, weight in enumerate(hours):
            start = _local_hour(calendar, day, hour)
            if start is not None:
                yield start, weekly * share * (weight / total) * factor


def arrivals(scenario: Scenario, calendar: BusinessCalendar | None = None) -> list[Arrival]:
    """The requests of the scenario's weeks, in order of arrival."""
    calendar = calendar or scenario.calendar()
    rng = random.Random(f"{scenario.seed}:arrivals")
    instants: list[datetime] = []
    for start, rate in hourly_rates(scenario, calendar):
        for _ in range(poisson(rng, rate)):
            instants.append(start + timedelta(seconds=rng.uniform(0, 3600)))
    instants.sort()
    return [request(scenario, calendar, n, at) for n, at in enumerate(instants, start=1)]


def request(scenario: Scenario, calendar: BusinessCalendar, number: int, at: datetime) -> Arrival:
    """What request number `number`, arriving at `at`, holds (its own random stream)."""
    rng = random.Random(f"{scenario.seed}:request:{number}")
    profile, b, m, h = scenario.arrivals, scenario.behaviour, scenario.minutes, scenario.hours
    channels = dict(profile.channels)
    if not calendar.is_open(at):
        channels.pop("phone", None)
        if not channels:
            channels = {"web": 1.0}
    return Arrival(
        number=number,
        at=at,
        channel=pick(rng, channels),
        kind=pick(rng, profile.kinds),
        software=pick(rng, profile.softwares),
        information_request=rng.random() < b.information_request,
        screen_share=rng.random() < b.screen_share,
        workaround=rng.random() >= b.no_workaround,
        known_bug=rng.random() < b.known_bug,
        accepted=rng.random() < b.evolution_accepted,
        confirms=rng.random() < b.customer_confirms,
        take=m.take.draw(rng),
        diagnose=m.diagnose.draw(rng),
        answer=m.answer.draw(rng),
        information=m.information_request.draw(rng),
        screen=m.screen_share.draw(rng),
        workaround_minutes=m.workaround.draw(rng),
        close=m.close.draw(rng),
        call=m.phone_call.draw(rng),
        reply_hours=h.customer_reply.draw(rng),
        confirm_hours=h.customer_confirmation.draw(rng),
    )


def pick(rng: random.Random, shares: dict[str, float]) -> str:
    """One key, with probability proportional to its share (keys in their given order)."""
    total = sum(shares.values())
    point = rng.random() * total
    for key, share in shares.items():
        point -= share
        if point < 0:
            return key
    return next(k for k, v in reversed(shares.items()) if v > 0)


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: Knuth's product of uniforms for small means, a rounded normal law for
    large ones (more than 50 an hour)."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _local_hour(calendar: BusinessCalendar, day: date, hour: int) -> datetime | None:
    """The start of this local hour, or None when it does not exist (the spring DST change)."""
    at = datetime.combine(day, time(hour), tzinfo=calendar.tz)
    if at.astimezone(UTC).astimezone(calendar.tz).hour != hour:
        return None
    return at
