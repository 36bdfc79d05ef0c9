"""R3: the first-response commitment, its time arithmetic and its French wording."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from assistance.business_time import DEFAULT_CALENDAR as CAL
from assistance.commitment import (
    CLOCK_STOPPERS,
    DEFAULT_COMMITMENT,
    Commitment,
    first_response_due,
    hours_text,
    percent_text,
)
from assistance.settings import Settings


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=CAL.tz)  # type: ignore[misc]


def test_the_default_is_four_business_hours_warned_at_three_quarters() -> None:
    assert Commitment(4.0, 0.75) == DEFAULT_COMMITMENT
    assert Settings().commitment() == DEFAULT_COMMITMENT
    assert Settings(first_response_hours=2).commitment() == Commitment(2.0, 0.75)
    assert Settings().dossier_policy()["warning_fraction"] == 0.75


def test_due_time_counts_business_hours_only() -> None:
    # Friday 17:30: 30 min on Friday, the rest from Monday 09:00.
    friday = paris(2026, 12, 4, 17, 30)
    assert first_response_due(CAL, friday, 4) == paris(2026, 12, 7, 13, 30)
    assert first_response_due(CAL, friday, 2) == paris(2026, 12, 7, 10, 30)
    assert Commitment(2).due(CAL, friday) == paris(2026, 12, 7, 10, 30)
    assert first_response_due(CAL, friday) == DEFAULT_COMMITMENT.due(CAL, friday)


def test_warning_at_the_fraction_of_open_time() -> None:
    opened = paris(2026, 12, 7, 9)  # Monday
    two = Commitment(2)
    due = two.due(CAL, opened)
    assert due == paris(2026, 12, 7, 11)
    assert two.warning_at(CAL, opened, due) == paris(2026, 12, 7, 10, 30)
    # across the lunch break: due at 16:00, warned after 3 h of open time
    opened = paris(2026, 12, 7, 11)
    due = DEFAULT_COMMITMENT.due(CAL, opened)
    assert due == paris(2026, 12, 7, 16)
    assert DEFAULT_COMMITMENT.warning_at(CAL, opened, due) == paris(2026, 12, 7, 15)


def test_time_left_is_business_time_and_negative_once_late() -> None:
    due = paris(2026, 12, 7, 10)  # Monday 10:00
    friday = paris(2026, 12, 4, 17)
    assert Commitment.time_left(CAL, friday, due) == timedelta(hours=2)
    assert Commitment.time_left(CAL, paris(2026, 12, 7, 14), due) == -timedelta(hours=3)
    assert Commitment.time_left(CAL, due, due) == timedelta(0)


@pytest.mark.parametrize(
    ("hours", "business", "plain"),
    [
        (4, "4 heures ouvrées", "4 heures"),
        (2, "2 heures ouvrées", "2 heures"),
        (1, "1 heure ouvrée", "1 heure"),
        (1.5, "1 h 30 ouvrées", "1 h 30"),
        (2.25, "2 h 15 ouvrées", "2 h 15"),
        (0.5, "30 minutes ouvrées", "30 minutes"),
        (1 / 60, "1 minute ouvrée", "1 minute"),
        (24, "24 heures ouvrées", "24 heures"),
    ],
)
def test_french_wording_of_the_delay(hours: float, business: str, plain: str) -> None:
    assert hours_text(hours) == business
    assert hours_text(hours, business=False) == plain
    assert Commitment(hours).delay_text() == business
    assert Commitment(hours).short_delay_text() == plain


def test_english_wording_of_the_delay() -> None:
    assert Commitment(4).short_delay_text("en") == "4 hours"
    assert Commitment(1).delay_text("en") == "1 business hour"
    assert Commitment(1.5).short_delay_text("en") == "1.5 hours"


@pytest.mark.parametrize(
    ("fraction", "fr", "en"),
    [(0.75, "75 %", "75%"), (0.5, "50 %", "50%"), (0.625, "62,5 %", "62.5%")],
)
def test_percent_wording(fraction: float, fr: str, en: str) -> None:
    assert percent_text(fraction) == fr
    assert percent_text(fraction, "en") == en


def test_default_texts_are_the_historical_ones() -> None:
    """With the default 4 h the notices read exactly as before the commitment module."""
    c = DEFAULT_COMMITMENT
    due = "lundi 07/12/2026 à 13:30"
    assert c.warning_entry() == "Alerte : 75 % du délai de première réponse écoulé."
    assert c.warning_subject(due) == f"Première réponse attendue avant le {due}"
    assert c.warning_text("D-2026-000042", due) == (
        "Le dossier D-2026-000042 n'a pas encore reçu de première réponse ; "
        f"l'engagement de 4 heures ouvrées expire le {due}."
    )
    assert c.breach_subject("D-2026-000042") == (
        "Engagement de première réponse dépassé : D-2026-000042"
    )
    assert c.breach_text("D-2026-000042", "manao-compta", due) == (
        "Le dossier D-2026-000042 (manao-compta) n'a pas reçu de réponse dans les "
        f"4 heures ouvrées (échéance {due})."
    )
    assert c.opened_text(due) == f"Dossier ouvert ; première réponse garantie avant le {due}."
    assert c.promise() == "une première réponse sous 4 heures ouvrées"


def test_one_hour_is_singular_in_the_notices() -> None:
    c = Commitment(1, 0.5)
    assert c.warning_entry() == "Alerte : 50 % du délai de première réponse écoulé."
    assert c.breach_text("D-2026-000042", "manao-paie", "x") == (
        "Le dossier D-2026-000042 (manao-paie) n'a pas reçu de réponse dans le délai de "
        "1 heure ouvrée (échéance x)."
    )
    assert c.warning_text("D-2026-000042", "x").endswith(
        "l'engagement de 1 heure ouvrée expire le x."
    )


def test_what_stops_the_clock() -> None:
    assert {
        "response",
        "information_request",
        "screen_share",
        "workaround",
        "handover_answer",
    } == CLOCK_STOPPERS
    assert Commitment.stops_clock("response")
    assert not Commitment.stops_clock("note")
    assert not Commitment.stops_clock("taken")


@pytest.mark.parametrize(("hours", "fraction"), [(0, 0.75), (-1, 0.75), (4, 0), (4, 1), (4, 1.5)])
def test_refuses_an_impossible_commitment(hours: float, fraction: float) -> None:
    with pytest.raises(ValueError):
        Commitment(hours, fraction)
