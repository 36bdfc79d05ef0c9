"""Short simulations on the time-skipping server: the real DossierWorkflow, simulated people.

With ample staff every first response is in time and no dossier is left without follow-up;
with one technician for far too many requests, every breach of the first-response commitment
is warned at 75 %, detected at its due time and escalated, and still no dossier is forgotten:
each one out of the queue has a technician, each open one a live timer, none is left in the
queue at the end (R2, R3).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from simulation.run import simulate
from simulation.scenario import Peak, load

# A week in June 2032 (no public holiday), then a week for the team to catch up.
WEEK = replace(
    load(),
    name="test",
    start=date(2032, 6, 7),
    weeks=1,
    drain_weeks=1,
    closed_days=(),
    peaks=(),
)


async def test_with_ample_staff_every_first_response_is_in_time_and_none_is_forgotten() -> None:
    s = replace(WEEK, per_day=10).with_team(technicians=4, trainers=2)
    outcome = await simulate(s)
    t = outcome.report.total
    assert outcome.arrivals == t.dossiers > 30
    assert (t.responses_due, t.in_time, t.late) == (t.dossiers, t.dossiers, 0)
    assert (t.without_owner, t.without_timer, t.never_taken, t.false_alarms) == (0, 0, 0, 0)
    assert outcome.report.samples == 11  # 10 business days' closings, and the end
    assert dict(outcome.stats.refused) == {}
    kinds = {k.label for k in outcome.report.kinds}
    assert kinds == {
        "question d'utilisation",
        "usage avancé (formation)",
        "bug",
        "demande d'évolution",
    }
    assert t.trainings == t.trainings_in_window > 0
    assert t.fixes_told == t.fixes_due and t.decisions_told == t.decisions > 0


async def test_understaffed_every_breach_is_warned_detected_and_escalated() -> None:
    # twice what one technician can do, from Monday to Wednesday; nothing after
    quiet = Peak(date(2032, 6, 10), date(2032, 6, 13), 0.0)
    s = replace(WEEK, per_day=60, peaks=(quiet,)).with_team(technicians=1, trainers=1)
    outcome = await simulate(s)
    t = outcome.report.total
    assert t.late > 20
    assert (t.warned, t.detected, t.escalated, t.false_alarms) == (t.late, t.late, t.late, 0)
    assert t.responses_due == t.dossiers  # all answered, late or not, by the end
    assert (t.without_owner, t.without_timer, t.never_taken) == (0, 0, 0)
    assert dict(outcome.stats.refused) == {}
