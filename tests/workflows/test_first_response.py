"""R3 on the workflow, with time skipping: due time, warning at 75 %, breach, at business times.

Deposits while the centre is closed: a Friday evening, the eve of Ascension, and the weekends of
both DST changes (each followed by a holiday: Easter Monday in March 2032, Toussaint on Monday
1 November 2032). A phone call is answered live (R1) and never warns nor breaches.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from assistance import business_time
from tests.workflows.harness import (
    TECH,
    Fakes,
    at_about,
    in_business_hours,
    opening,
    paris,
    running_worker,
    settled,
    skip_to,
    start,
    time_skipping,
)
from workflows.dossier import DossierWorkflow

DEPOSITS = [
    pytest.param(
        "2032-12-03T17:30:00",  # Friday: 30 min on Friday, 3 h 30 on Monday
        "2032-12-06T11:30:00+01:00",
        "2032-12-06T13:30:00+01:00",
        "lundi 06/12/2032 à 13:30",
        id="friday-evening",
    ),
    pytest.param(
        "2032-05-05T20:00:00",  # Wednesday evening; Thursday 6 May is Ascension
        "2032-05-07T12:00:00+02:00",  # 3 h elapse exactly at Friday's noon closing
        "2032-05-07T14:00:00+02:00",
        "vendredi 07/05/2032 à 14:00",
        id="eve-of-ascension",
    ),
    pytest.param(
        "2032-03-26T16:00:00",  # Friday, +01:00; DST starts Sunday 28; Monday 29 is Easter Monday
        "2032-03-30T10:00:00+02:00",
        "2032-03-30T11:00:00+02:00",
        "mardi 30/03/2032 à 11:00",
        id="spring-dst-then-easter-monday",
    ),
    pytest.param(
        "2032-10-29T16:00:00",  # Friday, +02:00; DST ends Sunday 31; Monday 1 Nov is Toussaint
        "2032-11-02T10:00:00+01:00",
        "2032-11-02T11:00:00+01:00",
        "mardi 02/11/2032 à 11:00",
        id="autumn-dst-then-toussaint",
    ),
]


@pytest.mark.parametrize(("deposit", "warning", "due", "due_text"), DEPOSITS)
async def test_deposit_while_closed_warns_and_breaches_in_business_hours(
    deposit: str, warning: str, due: str, due_text: str
) -> None:
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris(deposit)
        warn_at, due_at = datetime.fromisoformat(warning), datetime.fromisoformat(due)
        await skip_to(env, received)
        o = opening(received)
        assert o.first_response_due.isoformat() == due  # same instant and same offset
        handle = await start(env, queue, o)

        await skip_to(env, warn_at - timedelta(minutes=1))
        await settled(handle)
        assert fakes.notices == []  # nothing while the centre is closed
        assert fakes.types() == ["opened"]
        assert fakes.events[0].data["set"]["status"] == "new"
        assert fakes.templates() == ["acknowledgement"]
        assert fakes.mails[0].auto is True
        assert fakes.mails[0].context["first_response_due"] == due

        await skip_to(env, due_at + timedelta(minutes=30))
        await settled(handle)
        view = await handle.query(DossierWorkflow.view)
        assert view.status == "new"
        assert view.first_response_due.isoformat() == due
        assert view.first_responded_at is None
        assert fakes.notice_kinds() == ["first_response_warning", "first_response_breach"]
        assert [n.audience for n in fakes.notices] == ["team", "admins"]
        assert fakes.notices[0].subject == f"Première réponse attendue avant le {due_text}"
        assert f"(échéance {due_text})" in fakes.notices[1].text
        sent_warning, sent_breach = fakes.notice_times
        assert at_about(sent_warning, warn_at)
        assert at_about(sent_breach, due_at)
        assert all(in_business_hours(t) for t in fakes.notice_times)
        assert fakes.types() == ["opened", "first_response_warned", "first_response_breached"]
        breach = fakes.published()[-1].data
        assert breach["breach"] == {"due": due, "software": "manao-compta", "technician_id": None}
        breached_at = datetime.fromisoformat(view.details["first_response_breached_at"])
        assert at_about(breached_at, due_at)


async def test_friday_evening_breach_then_team_reminder_in_business_hours() -> None:
    """After a breach nobody acted on, the R2 timer takes over: 4 business hours later."""
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-12-03T17:30:00")
        await skip_to(env, received)
        handle = await start(env, queue, opening(received))
        await skip_to(env, paris("2032-12-07T12:00:00"))
        await settled(handle)
        assert fakes.notice_kinds() == [
            "first_response_warning",
            "first_response_breach",
            "reminder",  # breach Monday 13:30 + 4 business hours
        ]
        assert at_about(fakes.notice_times[2], paris("2032-12-06T17:30:00"))
        assert fakes.notices[2].audience == "team"
        assert all(in_business_hours(t) for t in fakes.notice_times)


async def test_phone_call_is_answered_live_and_never_warns_nor_breaches() -> None:
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-13T10:00:00")  # Tuesday
        await skip_to(env, received)
        o = opening(
            received,
            channel="phone",
            technician_id=TECH.user_id,
            technician_name=TECH.name,
            caller_phone="+33 1 23 45 67 89",
        )
        handle = await start(env, queue, o)
        await settled(handle)
        view = await handle.query(DossierWorkflow.view)
        assert view.status == "in_progress"
        assert (view.technician_id, view.technician_name) == (TECH.user_id, TECH.name)
        assert view.first_responded_at == received
        assert fakes.events[0].data["set"]["first_responded_at"] == received.isoformat()

        # well past the 14:00 due time, and before the next cycle's reminder (Thursday 10:00,
        # 4 business hours after the escalation): the test server's clock goes on in real
        # time after a skip, so a skip to that very instant raced it
        await skip_to(env, paris("2032-01-15T09:30:00"))
        await settled(handle)
        # no first-response warning or breach: the follow-through (R2) is the live timer
        assert fakes.notice_kinds() == ["reminder", "escalation"]
        assert [n.audience for n in fakes.notices] == ["technician", "admins"]
        assert fakes.notices[0].technician_id == TECH.user_id
        reminder_at, escalation_at = fakes.notice_times
        assert at_about(reminder_at, paris("2032-01-13T15:00:00"))  # + 4 business hours
        assert at_about(escalation_at, paris("2032-01-14T15:00:00"))  # + 4 + 8
        assert fakes.types() == ["opened", "reminded", "escalated"]
        assert (await handle.query(DossierWorkflow.view)).details.get("weekend_deposit") is False


async def test_the_calendar_computes_a_new_year_inside_the_workflow_sandbox() -> None:
    """A fresh worker, or a replay, computes a year's holidays inside the workflow sandbox:
    the calendar's caches are cold there, unlike in a process that computed due times."""
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-12-04T10:00:00")  # Saturday
        await skip_to(env, received)
        o = opening(received)
        business_time._public_holidays.cache_clear()
        business_time._day_intervals.cache_clear()
        handle = await start(env, queue, o)
        await skip_to(env, paris("2032-12-06T12:30:00"))
        await settled(handle)
        assert fakes.types() == ["opened", "first_response_warned"]
        assert at_about(fakes.notice_times[0], paris("2032-12-06T12:00:00"))
        assert (await handle.query(DossierWorkflow.view)).details["weekend_deposit"] is True
