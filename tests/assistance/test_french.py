"""French wording of dates and times (assistance/french.py): one way, in Europe/Paris."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from babel.dates import format_datetime
from hypothesis import given
from hypothesis import strategies as st

from assistance import french
from assistance.french import PARIS


def test_a_moment_in_full_and_short() -> None:
    at = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # 14:00 in Paris (winter)
    assert french.moment(at) == "lundi 30 novembre 2026 à 14:00"
    assert french.moment(at + timedelta(seconds=5), seconds=True) == (
        "lundi 30 novembre 2026 à 14:00:05"
    )
    assert french.moment_short(at) == "lundi 30/11/2026 à 14:00"
    assert french.moment_short(at, year=False) == "lundi 30/11 à 14:00"
    assert french.clock(at) == "14:00"
    assert french.day(at) == "30 novembre 2026"


def test_the_first_of_the_month_and_summer_time() -> None:
    at = datetime(2026, 7, 1, 7, 5, tzinfo=UTC)  # 09:05 in Paris (summer)
    assert french.moment(at) == "mercredi 1er juillet 2026 à 09:05"
    assert french.day(at) == "1er juillet 2026"
    assert french.day(date(2026, 8, 1)) == "1er août 2026"


def test_the_local_date_not_the_utc_one() -> None:
    late = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # already 1 January in Paris
    assert french.moment(late) == "vendredi 1er janvier 2027 à 00:30"
    assert french.day(late) == "1er janvier 2027"
    # another calendar zone, when the centre is configured so
    assert french.moment_short(late, timezone(timedelta(hours=-5))) == ("jeudi 31/12/2026 à 18:30")


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        french.moment(datetime(2026, 11, 30, 14, 0))


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_same_words_as_the_french_locale(naive: datetime) -> None:
    """The weekday and month names are CLDR's French ones (what Babel printed before)."""
    at = naive.replace(tzinfo=UTC)
    local = at.astimezone(PARIS)
    day = "1er" if local.day == 1 else str(local.day)
    expected = format_datetime(
        local, f"EEEE '{day}' MMMM y 'à' HH:mm", locale="fr_FR", tzinfo=PARIS
    )
    assert french.moment(at) == expected
