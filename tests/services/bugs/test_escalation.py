"""R2 for bugs: no developer activity for the configured business time → the admins are
mailed, once per quiet period; the developers' next step starts a new period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import httpx

from assistance.bus import Bus
from assistance.directory import Role
from deploy.local.stack import LocalStack
from services.bugs.escalation import Escalator
from services.bugs.settings import BugsSettings
from tests.helpers import auth, eventually
from tests.services.bugs.support import develop, new_bug, software


def _escalations(stack: LocalStack, reference: str) -> list:
    found = []
    for caught in stack.mail.messages:
        message = message_from_bytes(caught.data, policy=default_policy)
        if message["Subject"] == f"[{reference}] Bug sans activité des développeurs":
            found.append((caught.rcpt_tos, message))
    return found


async def _mailed(stack: LocalStack, reference: str, count: int) -> list | None:
    """The escalation mails of this bug once there are `count` (the check mails at once; the
    service's own periodic check may be the one mailing it, a moment later)."""
    found = _escalations(stack, reference)
    assert len(found) <= count, found
    return found if len(found) == count else None


async def test_a_quiet_bug_is_escalated_once_per_quiet_period(
    http: httpx.AsyncClient, system, bus: Bus, stack: LocalStack, pool
) -> None:
    bug_id, _ = await new_bug(bus, software=software(), subject="Relevés bancaires en double")
    reference = (
        await http.get(f"/api/v1/bugs/{bug_id}", headers=auth(system.tokens[Role.developer]))
    ).json()["reference"]
    escalator = Escalator(
        pool, system.settings, BugsSettings(escalation_hours=8), system.settings.calendar()
    )
    now = datetime.now(UTC)

    assert bug_id not in map(str, await escalator.check(now))  # too early
    later = now + timedelta(days=4)  # at least 8 business hours, whatever the day
    assert bug_id in map(str, await escalator.check(later))
    assert bug_id not in map(str, await escalator.check(later + timedelta(days=1)))

    mails = await eventually(lambda: _mailed(stack, reference, 1))
    recipients, message = mails[0]
    assert recipients == ["admin@manao.eu"]
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",)).get_content()
    assert "« Relevés bancaires en double »" in text
    assert "aucun développeur (bug non pris)" in text
    assert f"/api/v1/bugs/{bug_id}" in text

    await develop(http, system.tokens, bug_id, upto="claim")  # activity: a new quiet period
    assert bug_id not in map(str, await escalator.check(datetime.now(UTC)))
    assert bug_id in map(str, await escalator.check(later))
    mails = await eventually(lambda: _mailed(stack, reference, 2))
    bug = (await http.get(f"/api/v1/bugs/{bug_id}", headers=auth(system.tokens[Role.admin]))).json()
    assert len(bug["escalations"]) == 2
    assert "Suivi par : David Développeur." in mails[1][1].get_body(("plain",)).get_content()


async def test_a_bug_waiting_for_the_customers_is_not_escalated(
    http: httpx.AsyncClient, system, bus: Bus, pool
) -> None:
    bug_id, _ = await new_bug(bus, software=software())
    r = await http.post(
        f"/api/v1/bugs/{bug_id}/not-reproducible",
        headers=auth(system.tokens[Role.developer]),
        json={"questions": "Quel navigateur utilisez-vous ?"},
    )
    assert r.status_code == 200
    escalator = Escalator(
        pool, system.settings, BugsSettings(escalation_hours=1), system.settings.calendar()
    )
    assert bug_id not in map(str, await escalator.check(datetime.now(UTC) + timedelta(days=30)))
