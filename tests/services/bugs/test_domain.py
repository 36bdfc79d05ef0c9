"""Bug rules, pure (R8 order of the work, R2 follow-through): no stack needed."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistance.business_time import DEFAULT_CALENDAR
from assistance.errors import Conflict, Forbidden
from services.bugs.domain import (
    BugFacts,
    State,
    Step,
    carries_fix,
    check_claim,
    check_link,
    check_step,
    escalation_due,
    first_carrier,
    quiet_since,
    version_key,
)

DEV, OTHER = uuid.uuid4(), uuid.uuid4()


def bug(state: State, developer: uuid.UUID | None = None) -> BugFacts:
    return BugFacts(state=state, developer_id=developer, developer_name="David")


def refusal(call, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(Conflict) as caught:
        call(*args)
    return caught.value.code


# --- R8: the order of the work ----------------------------------------------------------------


def test_the_steps_follow_reproduce_diagnose_fix() -> None:
    check_step(bug(State.new), Step.reproduced, DEV)
    check_step(bug(State.new), Step.not_reproducible, DEV)
    check_step(bug(State.not_reproducible), Step.reproduced, DEV)
    check_step(bug(State.reproduced), Step.diagnosed, DEV)
    check_step(bug(State.diagnosed, DEV), Step.fix_completed, DEV)
    # signalled once: another version would tell the customers twice
    assert (
        refusal(check_step, bug(State.fix_completed, DEV), Step.fix_completed, DEV)
        == "fix_already_completed"
    )

    assert refusal(check_step, bug(State.new), Step.diagnosed, DEV) == "not_reproduced"
    assert refusal(check_step, bug(State.new, DEV), Step.fix_completed, DEV) == "not_diagnosed"
    assert (
        refusal(check_step, bug(State.reproduced, DEV), Step.fix_completed, DEV) == "not_diagnosed"
    )
    assert (
        refusal(check_step, bug(State.reproduced), Step.not_reproducible, DEV)
        == "already_reproduced"
    )
    assert refusal(check_step, bug(State.diagnosed), Step.reproduced, DEV) == "not_reproducible_now"


def test_a_released_or_duplicate_bug_takes_no_more_work() -> None:
    for step in Step:
        assert refusal(check_step, bug(State.released), step, DEV) == "bug_released"
        assert refusal(check_step, bug(State.duplicate), step, DEV) == "bug_duplicate"
    assert refusal(check_claim, bug(State.released), DEV) == "bug_released"
    assert refusal(check_link, bug(State.duplicate)) == "bug_duplicate"
    check_link(bug(State.released))  # a new dossier is told the shipped version at once


def forbidden(call, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(Forbidden) as caught:
        call(*args)
    return caught.value.code


def test_only_the_developer_holding_a_bug_works_on_it_and_signals_its_fix() -> None:
    held = bug(State.reproduced, DEV)
    assert refusal(check_step, held, Step.diagnosed, OTHER) == "claimed_by_another"
    check_step(held, Step.diagnosed, OTHER, admin=True)
    diagnosed = bug(State.diagnosed, DEV)
    assert forbidden(check_step, diagnosed, Step.fix_completed, OTHER) == "not_your_bug"
    assert forbidden(check_step, bug(State.diagnosed), Step.fix_completed, OTHER) == (
        "bug_not_claimed"
    )
    check_step(diagnosed, Step.fix_completed, OTHER, admin=True)


def test_claiming() -> None:
    assert check_claim(bug(State.new), DEV) is True
    assert check_claim(bug(State.new, DEV), DEV) is False
    assert refusal(check_claim, bug(State.new, DEV), OTHER) == "claimed_by_another"
    assert check_claim(bug(State.new, DEV), OTHER, admin=True) is True


# --- R8: which released version carries a fix -------------------------------------------------


def test_version_order() -> None:
    ordered = ["5.2-rc1", "5.2", "5.2.1", "5.3-beta", "5.3", "5.10", "6.0"]
    assert sorted(reversed(ordered), key=version_key) == ordered
    assert version_key("5.3.0") == version_key("5.3") == version_key("v5.3+b7")


def test_a_release_carries_the_fixes_of_its_version_and_earlier_ones() -> None:
    assert carries_fix("5.3", "5.3") is True
    assert carries_fix("5.4", "5.3") is True
    assert carries_fix("5.2.9", "5.3") is False
    assert carries_fix("5.3-rc1", "5.3") is False
    assert first_carrier(["5.2", "6.0", "5.4", "5.3.1"], "5.3") == "5.3.1"
    assert first_carrier(["5.2"], "5.3") is None


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 30), min_size=1, max_size=4), st.integers(0, 30))
def test_a_later_patch_always_carries_the_fix(parts: list[int], extra: int) -> None:
    version = ".".join(map(str, parts))
    later = f"{version}.{extra + 1}"
    assert carries_fix(later, version)
    assert not carries_fix(version, later)


# --- R2: escalation of quiet bugs -------------------------------------------------------------


def test_the_developers_silence_counts_only_when_they_owe_a_move() -> None:
    active = datetime.fromisoformat("2026-12-07T10:00:00+01:00")
    answered = datetime.fromisoformat("2026-12-08T10:00:00+01:00")
    for state in (State.new, State.reproduced, State.diagnosed):
        assert quiet_since(state, active, None) == active
    assert quiet_since(State.not_reproducible, active, None) is None  # waiting for customers
    assert quiet_since(State.not_reproducible, active, answered) == answered
    for state in (State.fix_completed, State.released, State.duplicate):
        assert quiet_since(state, active, answered) is None


def test_escalation_is_due_after_business_hours() -> None:
    friday = datetime.fromisoformat("2026-12-04T17:00:00+01:00")
    # 16 business hours from Friday 17:00: 1 h Friday, 8 h Monday, 7 h Tuesday → 17:00
    due = datetime.fromisoformat("2026-12-08T17:00:00+01:00")
    assert escalation_due(DEFAULT_CALENDAR, friday, 16, due) is True
    assert escalation_due(DEFAULT_CALENDAR, friday, 16, due.replace(minute=0, hour=16)) is False
