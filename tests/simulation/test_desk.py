"""Who works next (R4): the weekend's deposits first, then first come, first served, and a
technician's own dossiers that came back, in the same order; never another's."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from simulation.desk import Work, next_work

PARIS = ZoneInfo("Europe/Paris")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2032, 5, day, hour, minute, tzinfo=PARIS)


def test_the_weekend_deposits_go_first_on_monday_then_first_come_first_served() -> None:
    waiting = [
        Work("m1", "D-2032-000003", at(10, 9, 5)),
        Work("s1", "D-2032-000002", at(9, 15, 0), weekend=True),
        Work("s0", "D-2032-000001", at(8, 11, 0), weekend=True),
    ]
    order = []
    while waiting:
        work = next_work("t1", waiting)
        assert work is not None
        order.append(work.dossier_id)
        waiting.remove(work)
    assert order == ["s0", "s1", "m1"]


def test_a_dossier_that_came_back_is_its_technicians_alone() -> None:
    came_back = Work("b", "D-2032-000009", at(11, 10), owner="t2")
    queue = Work("q", "D-2032-000010", at(11, 10, 30))
    assert next_work("t1", [came_back, queue]) == queue
    assert next_work("t2", [came_back, queue]) == came_back
    assert next_work("t1", [came_back]) is None


def test_the_queue_and_own_dossiers_are_served_by_the_time_they_waited_from() -> None:
    older_queue = Work("q", "D-2032-000010", at(11, 9, 0))
    came_back = Work("b", "D-2032-000009", at(11, 10), owner="t1")
    assert next_work("t1", [came_back, older_queue]) == older_queue
    newer_queue = Work("q2", "D-2032-000011", at(11, 11))
    assert next_work("t1", [came_back, newer_queue]) == came_back


def test_ties_go_by_reference_so_every_technician_sees_one_order() -> None:
    a = Work("a", "D-2032-000021", at(12, 9))
    b = Work("b", "D-2032-000020", at(12, 9))
    assert next_work("t1", [a, b]) == b
    assert next_work("t1", []) is None
