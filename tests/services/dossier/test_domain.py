"""Dossier rules without servers: the queue order and reasons (R4), refusals (R2, R5, R8, R10)."""

from __future__ import annotations

from datetime import datetime

import pytest

from assistance.business_time import DEFAULT_CALENDAR
from services.dossier import domain
from services.dossier.domain import QueueEntry, Refused
from workflows.types import Actor, DossierState

TECH = Actor(user_id="t1", role="technician", name="Thomas")
OTHER = Actor(user_id="t2", role="technician", name="Zoé")
ADMIN = Actor(user_id="a1", role="admin", name="Alice")
CUSTOMER = Actor(user_id="c1", role="customer", name="Claire")


def paris(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=DEFAULT_CALENDAR.tz)


@pytest.mark.parametrize(
    ("received", "weekend"),
    [
        ("2026-12-04T17:59:00", False),  # Friday, still open
        ("2026-12-04T18:30:00", True),  # Friday evening
        ("2026-12-05T10:00:00", True),  # Saturday
        ("2026-12-06T23:59:00", True),  # Sunday night
        ("2026-12-07T08:30:00", True),  # Monday before opening
        ("2026-12-07T12:30:00", False),  # Monday lunch break
        ("2026-12-08T07:00:00", False),  # Tuesday early morning
        ("2026-12-09T20:00:00", False),  # Wednesday evening
        ("2027-05-06T10:00:00", False),  # Ascension Thursday: closed, but not a weekend
        ("2027-03-28T15:00:00", True),  # Sunday before Easter Monday (reopens Tuesday)
        ("2027-03-29T15:00:00", True),  # Easter Monday itself, part of the long weekend
    ],
)
def test_weekend_deposits(received: str, weekend: bool) -> None:
    assert domain.is_weekend_deposit(DEFAULT_CALENDAR, paris(received)) is weekend


def test_queue_order_weekend_first_then_first_come_first_served() -> None:
    def entry(ref: str, at: str) -> QueueEntry:
        received = paris(at)
        return QueueEntry(ref, ref, received, domain.is_weekend_deposit(DEFAULT_CALENDAR, received))

    entries = [
        entry("D-2026-000005", "2026-12-07T10:42:00"),  # Monday morning
        entry("D-2026-000003", "2026-12-05T11:00:00"),  # Saturday
        entry("D-2026-000001", "2026-12-04T15:00:00"),  # Friday afternoon, still open
        entry("D-2026-000004", "2026-12-06T09:00:00"),  # Sunday
        entry("D-2026-000002", "2026-12-04T19:00:00"),  # Friday evening
        entry("D-2026-000006", "2026-12-07T10:42:00"),  # same instant as 000005
    ]
    ordered = [e.reference for e in domain.queue_order(entries)]
    assert ordered == [
        "D-2026-000002",
        "D-2026-000003",
        "D-2026-000004",
        "D-2026-000001",
        "D-2026-000005",
        "D-2026-000006",
    ]
    reasons = [domain.queue_reason(DEFAULT_CALENDAR, e) for e in domain.queue_order(entries)]
    assert reasons[1] == (
        "déposée pendant le week-end (samedi 05/12 à 11:00) : traitée en priorité lundi matin"
    )
    assert reasons[4] == "arrivée lundi 07/12 à 10:42 : premier arrivé, premier servi"


def _refusal(rule, *args) -> str:
    with pytest.raises(Refused) as caught:
        rule(*args)
    return caught.value.code


def test_take_and_ownership() -> None:
    fresh = DossierState()
    domain.check_take(fresh, TECH)
    assert _refusal(domain.check_take, fresh, CUSTOMER) == "staff_only"
    taken = DossierState(status="in_progress", technician_id="t1", technician_name="Thomas")
    assert _refusal(domain.check_take, taken, TECH) == "already_yours"
    assert _refusal(domain.check_take, taken, OTHER) == "taken_by_another"
    domain.check_take(taken, ADMIN)  # an admin may reassign
    assert _refusal(domain.check_release, taken, OTHER) == "taken_by_another"
    closed = DossierState(status="closed", technician_id="t1")
    assert _refusal(domain.check_take, closed, TECH) == "dossier_closed"


def test_diagnosis_needs_context_need_and_a_known_kind() -> None:
    taken = DossierState(status="in_progress", technician_id="t1")
    domain.check_diagnosis(taken, TECH, "bug", "Paie mensuelle", "Bulletin faux")
    assert _refusal(domain.check_diagnosis, taken, TECH, "bug", " ", "x") == (
        "diagnosis_incomplete"
    )
    assert _refusal(domain.check_diagnosis, taken, TECH, "autre", "c", "n") == "invalid_kind"
    handed = DossierState(status="waiting_service", technician_id="t1", kind="evolution")
    assert _refusal(domain.check_diagnosis, handed, TECH, "usage", "c", "n") == "handed_over"


def test_workaround_gate_and_closure_rules() -> None:
    bug = DossierState(status="in_progress", technician_id="t1", kind="bug")
    assert _refusal(domain.check_workaround, bug, TECH, None, None) == "workaround_required"
    assert _refusal(domain.check_workaround, bug, TECH, "a", "b") == "workaround_required"
    domain.check_workaround(bug, TECH, "Saisir la ligne à la main", None)
    domain.check_workaround(bug, TECH, None, "Aucun autre chemin dans le logiciel")
    usage = DossierState(status="in_progress", technician_id="t1", kind="usage")
    assert _refusal(domain.check_workaround, usage, TECH, "x", None) == "not_a_bug"
    assert _refusal(domain.check_close, usage, TECH, "  ") == "resolution_required"
    undiagnosed = DossierState(status="in_progress", technician_id="t1")
    assert _refusal(domain.check_close, undiagnosed, TECH, "fait") == "not_diagnosed"
    assert _refusal(domain.check_confirm, usage, CUSTOMER) == "not_resolved"
    assert _refusal(domain.check_reopen, usage, CUSTOMER, "encore") == "not_closed"
    closed = DossierState(status="closed", technician_id="t1", kind="usage")
    domain.check_reopen(closed, CUSTOMER, "Le problème revient")
    assert _refusal(domain.check_response, closed, CUSTOMER, "merci") == "dossier_closed"
