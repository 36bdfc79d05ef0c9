"""The in-memory read model: each event's fields laid over the dossier in `seq` order, the
times of the warning, the breach and the administrators' notice kept."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from assistance.business_time import DEFAULT_CALENDAR
from assistance.commitment import DEFAULT_COMMITMENT
from assistance.events import Event
from services.dossier.state import DossierOpening, StaffNotice
from simulation.recorder import Recorder

PARIS = ZoneInfo("Europe/Paris")
OPENED = datetime(2032, 6, 7, 9, tzinfo=PARIS)


async def no_service(*_: Any) -> dict[str, Any]:
    raise AssertionError("no hand-over here")


def recorder() -> Recorder:
    r = Recorder(DEFAULT_COMMITMENT, no_service)
    r.opened(
        DossierOpening(
            dossier_id="d1",
            reference="D-2032-000001",
            channel="web",
            requester_email="c@exemple.fr",
            requester_name="C",
            software="manao-compta",
            subject="s",
            description="d",
            received_at=OPENED,
            first_response_due=DEFAULT_COMMITMENT.due(DEFAULT_CALENDAR, OPENED),
        ),
        DEFAULT_CALENDAR,
    )
    return r


def event(seq: int, what: str, at: datetime, **fields: Any) -> Event:
    return Event(
        id=f"d1:{seq}",
        type=f"dossier.dossier.{what}",
        occurred_at=at,
        data={"dossier_id": "d1", "seq": seq, "set": fields},
    )


def test_the_latest_step_wins_whatever_order_the_activities_finish_in() -> None:
    r = recorder()
    d = r.dossiers["d1"]
    assert (d.due, d.warning_at) == (OPENED.replace(hour=14), OPENED.replace(hour=12))
    responded = (OPENED + timedelta(hours=1)).isoformat()
    r._event(
        event(
            3,
            "responded",
            OPENED + timedelta(hours=1),
            status="in_progress",
            technician_id="t1",
            first_responded_at=responded,
            kind="usage",
        )
    )
    r._event(
        event(2, "taken", OPENED + timedelta(minutes=5), status="in_progress", technician_id="t1")
    )
    assert (d.status, d.kind, d.first_responded_at) == (
        "in_progress",
        "usage",
        OPENED + timedelta(hours=1),
    )
    assert d.taken_at == OPENED + timedelta(minutes=5)


def test_warning_breach_and_escalation_are_kept_with_their_time() -> None:
    r = recorder()
    r._event(event(2, "first_response_warned", OPENED.replace(hour=12), status="new"))
    r._event(event(4, "first_response_breached", OPENED.replace(hour=14), status="new"))
    notice = StaffNotice("d1", "D-2032-000001", 3, "admins", "first_response_breach", "s", "t")
    r._notice(notice, OPENED.replace(hour=14))
    d = r.dossiers["d1"]
    assert (d.warned_at, d.breached_at, d.breach_escalated_at) == (
        OPENED.replace(hour=12),
        OPENED.replace(hour=14),
        OPENED.replace(hour=14),
    )
    r._event(event(5, "reminded", OPENED.replace(hour=16), status="new"))
    assert d.reminders == 1 and d.escalations == 0
