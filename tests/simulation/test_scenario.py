"""The scenario: the shipped default, TOML overrides, and refusals that name the key."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import date, datetime, time

import pytest

from simulation.scenario import (
    DEFAULT_FILE,
    Absence,
    Scenario,
    ScenarioError,
    Spread,
    from_table,
    load,
)


def test_the_default_scenario_is_may_2032_with_its_bridge_leave_and_peak() -> None:
    s = load()
    assert (s.start, s.weeks, s.per_day, s.drain_weeks, s.seed) == (date(2032, 5, 3), 4, 100, 2, 16)
    assert s.closed_days == (date(2032, 5, 7),)
    assert s.staff.technicians == 4 and s.staff.trainers == 2
    assert s.staff.absences == (
        Absence("trainer", 1, date(2032, 5, 10), date(2032, 5, 14), "congés"),
    )
    calendar = s.calendar()
    # Ascension (public holiday), the bridge (the scenario's), Whit Monday (public holiday)
    assert [calendar.is_business_day(date(2032, 5, d)) for d in (5, 6, 7, 10, 17)] == [
        True,
        False,
        False,
        True,
        False,
    ]
    assert s.dossier_policy().closed_days == "2032-05-07"


def test_a_file_overrides_only_what_it_says() -> None:
    s = from_table(
        tomllib.loads(
            """
            [run]
            weeks = 1
            per_day = 12.5
            [staff]
            technicians = 2
            [durations.minutes]
            answer = [1, 2, 3]
            [policy]
            first_response_hours = 2
            """
        )
    )
    default = Scenario()
    assert (s.weeks, s.per_day, s.staff.technicians, s.staff.trainers) == (1, 12.5, 2, 2)
    assert s.minutes.answer == Spread(1, 2, 3)
    assert s.minutes.take == default.minutes.take
    assert s.dossier_policy().first_response_hours == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[run]\nweek = 1", "run : clé(s) inconnue(s) ['week']"),
        ("[run]\nstart = 2032-05-04", "doit être un lundi"),
        ("[durations.minutes]\nanswer = [3, 2, 1]", "durations.minutes.answer"),
        ("[durations.minutes]\nanswer = [1, 2]", "[min, le plus probable, max]"),
        ("[arrivals]\nkinds = { question = 1 }", "arrivals.kinds : valeurs permises"),
        ("[[staff.absences]]\nrole = 'trainer'\nnumber = 3\nfrom = 2032-05-10", "formateur n° 3"),
        ("[[staff.absences]]\nrole = 'cook'\nfrom = 2032-05-10", "rôle inconnu 'cook'"),
        ("[policy]\nfirst_response = 2", "policy : clé(s) inconnue(s)"),
        ("[behaviour]\nknown_bug = 1.5", "behaviour.known_bug doit être entre 0 et 1"),
        ("[calendar]\nbusiness_hours = '9h-18h'", "calendrier ou créneau invalide"),
        ("[staff]\ntechnicians = 0", "au moins un technicien"),
        ("[versions]\nslot = 'someday 14:00'", "calendrier ou créneau invalide"),
        ("[sun]\nshine = true", "le scénario : clé(s) inconnue(s) ['sun']"),
    ],
)
def test_a_wrong_value_is_refused_with_its_key(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as refused:
        from_table(tomllib.loads(text))
    assert message in str(refused.value)


def test_an_absence_closes_that_persons_days_only() -> None:
    s = load()
    trainer_1, trainer_2 = s.person_calendar("trainer", 1), s.person_calendar("trainer", 2)
    assert not trainer_1.is_business_day(date(2032, 5, 12))
    assert trainer_2.is_business_day(date(2032, 5, 12))
    # the fourth technician's own hours
    tech_4 = s.person_calendar("technician", 4)
    tz = s.calendar().tz
    assert tech_4.is_open(datetime.combine(date(2032, 5, 4), time(8, 30), tzinfo=tz))
    assert not tech_4.is_open(datetime.combine(date(2032, 5, 4), time(16, 30), tzinfo=tz))


def test_regular_releases_skip_closed_days_and_reviews_follow_the_slot() -> None:
    s = load()
    releases = [(r.software, r.at.isoformat()) for r in s.release_times()]
    # Thursday 6 May is Ascension and Friday 7 the bridge: the release moves to Monday 10
    assert releases[:2] == [
        ("manao-compta", "2032-05-10T14:00:00+02:00"),
        ("manao-paie", "2032-05-10T14:00:00+02:00"),
    ]
    assert [r.at.date() for r in s.release_times()][2::2] == [date(2032, 5, 20), date(2032, 6, 3)]
    assert [t.date() for t in s.review_times()] == [
        date(2032, 5, d) for d in (3, 10, 17, 24, 31)
    ] + [date(2032, 6, 7)]


def test_a_smaller_team_drops_the_absences_of_people_no_longer_in_it() -> None:
    s = load().with_team(technicians=3, trainers=0)
    assert (s.staff.technicians, s.staff.trainers) == (3, 0)
    assert s.staff.absences == ()
    assert s.staff.working_hours == ()  # the fourth technician's hours went with them


def test_the_shipped_file_is_the_default() -> None:
    assert load(DEFAULT_FILE) == load()
    assert replace(load(), name="x").name == "x"
