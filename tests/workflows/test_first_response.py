"""R3 on the workflow, with time skipping: due time, warning at 75 %, breach, at business times."""

from __future__ import annotations

from datetime import timedelta

from tests.workflows.harness import (
    Fakes,
    at_about,
    opening,
    paris,
    running_worker,
    skip_to,
    start,
    time_skipping,
)
from workflows.dossier import DossierWorkflow


async def test_friday_evening_deposit_warns_and_breaches_on_monday() -> None:
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2026-12-04T17:30:00")  # Friday
        await skip_to(env, received)
        o = opening(received)
        assert o.first_response_due == paris("2026-12-07T13:30:00")  # Monday
        handle = await start(env, queue, o)
        await skip_to(env, paris("2026-12-07T14:00:00"))
        view = await handle.query(DossierWorkflow.view)
        assert view.status == "new"
        assert fakes.templates()[0] == "acknowledgement"
        assert fakes.mails[0].auto is True
        kinds = fakes.notice_kinds()
        assert kinds[:2] == ["first_response_warning", "first_response_breach"]
        warn_at, breach_at = fakes.notice_times[:2]
        assert at_about(warn_at, paris("2026-12-07T11:30:00"))  # 75 % of 4 business hours
        assert at_about(breach_at, paris("2026-12-07T13:30:00"))
        assert [n.audience for n in fakes.notices[:2]] == ["team", "admins"]
        assert "first_response_breached" in fakes.types()
        assert view.details["first_response_breached_at"].startswith("2026-12-07T12:30")
        await skip_to(env, received + timedelta(minutes=1))
