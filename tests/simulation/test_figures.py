"""The report's figures from recorded facts: exact counts for a handful of dossiers."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from assistance.business_time import DEFAULT_CALENDAR
from assistance.commitment import DEFAULT_COMMITMENT
from simulation.figures import (
    Booking,
    Decided,
    DossierFacts,
    FixReleased,
    Sample,
    compute,
    week_label,
)

PARIS = ZoneInfo("Europe/Paris")
CAL = DEFAULT_CALENDAR
END = datetime(2032, 6, 14, tzinfo=PARIS)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2032, 6, day, hour, minute, tzinfo=PARIS)


def dossier(n: int, received: datetime, kind: str | None = "usage", **kw: object) -> DossierFacts:
    due = DEFAULT_COMMITMENT.due(CAL, received)
    facts = DossierFacts(
        dossier_id=f"d{n}",
        reference=f"D-2032-{n:06d}",
        channel="web",
        received_at=received,
        due=due,
        warning_at=DEFAULT_COMMITMENT.warning_at(CAL, received, due),
        kind=kind,
        technician_id="t1",
        taken_at=received,
    )
    for key, value in kw.items():
        setattr(facts, key, value)
    return facts


def test_first_responses_in_time_and_every_late_one_warned_detected_and_escalated() -> None:
    on_time = dossier(
        1, at(7, 9), first_responded_at=at(7, 10), status="closed", closed_at=at(7, 11)
    )
    late = dossier(
        2,
        at(7, 9),  # due 14:00, warned at 12:00 (3 business hours, lunch excluded… 9→12)
        first_responded_at=at(7, 15),
        warned_at=at(7, 12, 0) + timedelta(seconds=1),
        breached_at=at(7, 14, 0) + timedelta(seconds=1),
        breach_escalated_at=at(7, 14, 0) + timedelta(seconds=1),
        status="closed",
        closed_at=at(7, 16),
    )
    late_unwarned = dossier(
        3, at(7, 9), first_responded_at=at(7, 15), status="closed", closed_at=at(7, 16)
    )
    assert late.warning_at == at(7, 12) and late.due == at(7, 14)
    r = compute([on_time, late, late_unwarned], calendar=CAL, end=END)
    t = r.total
    assert (t.dossiers, t.responses_due, t.in_time, t.late) == (3, 3, 1, 2)
    assert (t.warned, t.detected, t.escalated, t.false_alarms) == (1, 1, 1, 0)
    assert not t.breaches_handled
    assert round(t.in_time_pct or 0, 4) == 33.3333
    # business hours from 9:00 to 11:00, then 9:00 to 16:00 with lunch: 2 h, 6 h, 6 h
    assert t.closure_hours == [2.0, 6.0, 6.0]
    assert t.closure_median == 6.0


def test_a_breach_recorded_though_answered_in_time_is_a_false_alarm() -> None:
    wrong = dossier(1, at(7, 9), first_responded_at=at(7, 10), breached_at=at(7, 14))
    assert compute([wrong], calendar=CAL, end=END).total.false_alarms == 1


def test_a_response_not_due_before_the_end_is_not_counted_yet() -> None:
    late_deposit = dossier(
        1, END - timedelta(hours=1), kind=None, technician_id=None, taken_at=None
    )
    t = compute([late_deposit], calendar=CAL, end=END).total
    assert (t.responses_due, t.open_at_end, t.never_taken) == (0, 1, 0)
    left = dossier(2, at(11, 9), kind=None, technician_id=None, taken_at=None)
    t = compute([late_deposit, left], calendar=CAL, end=END).total
    assert (t.responses_due, t.late, t.open_at_end, t.never_taken) == (1, 1, 2, 1)


def test_trainings_fixes_and_decisions_by_the_rule_of_each() -> None:
    training_1 = dossier(1, at(7, 9), kind="advanced_usage")
    training_2 = dossier(2, at(7, 9), kind="advanced_usage")
    bug = dossier(3, at(8, 9), kind="bug", mails=[("fix_released", at(10, 14))])
    bug_untold = dossier(4, at(8, 9), kind="bug")
    evolution = dossier(5, at(9, 9), kind="evolution", mails=[("evolution_rejected", at(14, 11))])
    r = compute(
        [training_1, training_2, bug, bug_untold, evolution],
        calendar=CAL,
        end=END,
        bookings=[
            Booking("d1", at(7, 17), at(8, 9)),  # Monday → Tuesday: the next business day
            Booking("d2", at(7, 17), at(9, 9), by_hand=True),  # Wednesday: too late
        ],
        releases=[FixReleased("b1", "manao-compta", "5.3", at(10, 14), ("d3", "d4"))],
        decisions=[Decided("e1", "rejected", at(14, 11), ("d5",))],
    )
    t = r.total
    assert (t.trainings, t.trainings_in_window, t.trainings_pct) == (2, 1, 50.0)
    assert (t.fixes_due, t.fixes_told) == (2, 1)
    assert (t.decisions, t.decisions_told) == (1, 1)
    kinds = {k.label: k for k in r.kinds}
    assert kinds["bug"].fixes_due == 2 and kinds["usage avancé (formation)"].trainings == 2


def test_dossiers_found_without_owner_or_timer_count_once_in_their_week() -> None:
    a = dossier(1, at(7, 9))
    b = dossier(8, at(14, 9), status="in_progress")
    samples = [
        Sample(at(7, 18), open=2, queued=0, without_timer=("d1",)),
        Sample(at(8, 18), open=2, queued=0, without_timer=("d1",), without_owner=("d8",)),
    ]
    r = compute([a, b], calendar=CAL, end=END, samples=samples)
    assert [(w.label, w.without_timer, w.without_owner) for w in r.weeks] == [
        ("sem. du 07/06", 1, 0),
        ("sem. du 14/06", 0, 1),
    ]
    assert r.total.forgotten == 2 and r.samples == 2


def test_rows_come_in_order_and_count_arrivals_by_hour_of_the_week() -> None:
    r = compute(
        [dossier(1, at(9, 10, 30), kind="bug"), dossier(2, at(7, 9, 5), kind=None)],
        calendar=CAL,
        end=END,
    )
    assert [k.label for k in r.kinds] == ["bug", "non classé"]
    assert [d.label for d in r.days] == ["2032-06-07", "2032-06-09"]
    assert r.arrivals_by_hour[0 * 24 + 9] == 1 and r.arrivals_by_hour[2 * 24 + 10] == 1
    assert sum(r.arrivals_by_hour) == 2
    assert r.day_kinds == {("2032-06-07", None): 1, ("2032-06-09", "bug"): 1}
    assert week_label(at(7, 0).date()) == "sem. du 07/06"
