"""The pure rules of the evolutions service (R9, R11, R12)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistance.errors import Conflict, DomainError
from services.evolutions import domain
from services.evolutions.domain import ReviewSlot

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("text", "slot"),
    [
        ("monday 10:00", ReviewSlot(0, 10, 0)),
        ("Lundi 10h00", ReviewSlot(0, 10, 0)),
        ("  vendredi 16:45 ", ReviewSlot(4, 16, 45)),
        ("sunday 0:05", ReviewSlot(6, 0, 5)),
    ],
)
def test_review_slot_parses_english_and_french(text: str, slot: ReviewSlot) -> None:
    assert ReviewSlot.parse(text) == slot


@pytest.mark.parametrize("text", ["", "monday", "funday 10:00", "monday 24:00", "lundi 9:60"])
def test_review_slot_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        ReviewSlot.parse(text)


def test_temporal_counts_days_from_sunday() -> None:
    assert ReviewSlot.parse("monday 10:00").temporal_day_of_week == 1
    assert ReviewSlot.parse("sunday 10:00").temporal_day_of_week == 0
    assert ReviewSlot.parse("saturday 10:00").temporal_day_of_week == 6


def test_next_reviews_keep_ten_o_clock_across_both_dst_changes() -> None:
    slot = ReviewSlot.parse("monday 10:00")
    spring = slot.next_times(datetime(2027, 3, 20, tzinfo=UTC), "Europe/Paris", 2)
    assert [t.astimezone(UTC) for t in spring] == [
        datetime(2027, 3, 22, 9, 0, tzinfo=UTC),  # CET, UTC+1
        datetime(2027, 3, 29, 8, 0, tzinfo=UTC),  # CEST since Sunday 28 March
    ]
    autumn = slot.next_times(datetime(2027, 10, 26, tzinfo=UTC), "Europe/Paris", 2)
    assert [t.astimezone(UTC) for t in autumn] == [
        datetime(2027, 11, 1, 9, 0, tzinfo=UTC),  # CET again since Sunday 31 October
        datetime(2027, 11, 8, 9, 0, tzinfo=UTC),
    ]
    at_the_slot = datetime(2027, 3, 22, 9, 0, tzinfo=UTC)  # strictly after: next week's
    assert slot.next_times(at_the_slot, "Europe/Paris") == [datetime(2027, 3, 29, 8, tzinfo=UTC)]
    with pytest.raises(ValueError):
        slot.next_times(datetime(2027, 3, 22), "Europe/Paris")


@given(
    after=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
    weekday=st.integers(0, 6),
    hour=st.integers(4, 23),  # away from the 02:00–03:00 hour that DST skips
    minute=st.integers(0, 59),
)
def test_next_reviews_are_weekly_at_the_local_slot(
    after: datetime, weekday: int, hour: int, minute: int
) -> None:
    slot = ReviewSlot(weekday, hour, minute)
    times = slot.next_times(after, "Europe/Paris", 3)
    local = [t.astimezone(PARIS) for t in times]
    assert all((t.weekday(), t.hour, t.minute) == (weekday, hour, minute) for t in local)
    assert after < times[0] <= after + timedelta(days=7, hours=1)
    assert [(b.date() - a.date()).days for a, b in zip(local, local[1:], strict=False)] == [7, 7]


def test_iso_week_is_counted_in_paris() -> None:
    sunday_late = datetime(2026, 12, 27, 22, 30, tzinfo=UTC)  # Sunday 23:30 in Paris
    monday_early = datetime(2026, 12, 27, 23, 30, tzinfo=UTC)  # Monday 00:30 in Paris
    assert domain.iso_week(sunday_late) == "2026-W52"
    assert domain.iso_week(monday_early) == "2026-W53"
    assert domain.iso_week(datetime(2027, 1, 4, 8, tzinfo=UTC)) == "2027-W01"
    assert domain.week_start("2026-W53") == date(2026, 12, 28)
    for bad in ("2026-53", "2026-W54", "W01"):
        with pytest.raises(ValueError):
            domain.week_start(bad)


def test_a_decision_needs_its_specification_or_its_reason() -> None:
    with pytest.raises(DomainError) as missing_spec:
        domain.check_decision("accepted", "Bonne idée", " \n")
    assert (missing_spec.value.status, missing_spec.value.field) == (422, "specification")
    with pytest.raises(DomainError) as missing_reason:
        domain.check_decision("rejected", None, "# cahier")
    assert missing_reason.value.field == "reason"
    domain.check_decision("accepted", None, "# Cahier des charges")
    domain.check_decision("rejected", "Hors périmètre", None)


def test_the_same_decision_replays_and_another_conflicts() -> None:
    recorded = {"status": "accepted", "reason": None, "specification": "# Spec"}
    assert domain.replayed_decision(recorded, "accepted", "", "# Spec\n")
    with pytest.raises(Conflict):
        domain.replayed_decision(recorded, "rejected", "Non", None)
    with pytest.raises(Conflict):
        domain.replayed_decision(recorded, "accepted", None, "# Autre spec")


def test_grouping_only_open_requests_of_one_software() -> None:
    target = {"id": "t", "software": "compta", "status": "open", "merged_into": None}
    other = {"id": "o", "software": "compta", "status": "open", "merged_into": None}
    domain.can_group(target, [other])
    domain.can_group(target, [{**other, "status": "merged", "merged_into": "t"}])  # idempotent
    with pytest.raises(DomainError) as elsewhere:
        domain.can_group(target, [{**other, "software": "paie"}])
    assert elsewhere.value.field == "evolutions"
    with pytest.raises(Conflict):
        domain.can_group(target, [{**other, "status": "accepted"}])
    with pytest.raises(Conflict):
        domain.can_group({**target, "status": "rejected"}, [other])


def test_versions_and_slugs() -> None:
    assert domain.check_version("5.3.1-rc1") == "5.3.1-rc1"
    for bad in ("latest", "5 3", "", "-1", "a/b"):
        with pytest.raises(DomainError):
            domain.check_version(bad)
    assert domain.slugify("Écritures : l'export FEC !") == "ecritures-l-export-fec"
