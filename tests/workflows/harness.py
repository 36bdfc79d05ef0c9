"""Workflow test harness: Temporal's time-skipping server and same-name fake activities."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from assistance.business_time import DEFAULT_CALENDAR
from assistance.commitment import first_response_due
from assistance.events import Event
from assistance.temporal import data_converter
from workflows.dossier import DossierWorkflow
from workflows.types import (
    Actor,
    DossierOpening,
    DossierPolicy,
    DossierView,
    HandOver,
    MailOrder,
    StaffNotice,
    StepRecord,
)

TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"
TECH = Actor(user_id="11111111-1111-1111-1111-111111111111", role="technician", name="Thomas")
OTHER_TECH = Actor(user_id="22222222-2222-2222-2222-222222222222", role="technician", name="Zoé")
CUSTOMER = Actor(user_id="33333333-3333-3333-3333-333333333333", role="customer", name="Claire")


@dataclass
class Fakes:
    """Stand-ins for the activities (NATS, SMTP, the other services), recording calls."""

    events: list[Event] = field(default_factory=list)
    mails: list[MailOrder] = field(default_factory=list)
    notices: list[StaffNotice] = field(default_factory=list)
    handovers: list[HandOver] = field(default_factory=list)
    notice_times: list[datetime] = field(default_factory=list)
    records: list[StepRecord] = field(default_factory=list)

    @activity.defn(name="publish_dossier_event")
    async def publish(self, event: Event) -> None:
        self.events.append(event)

    @activity.defn(name="send_dossier_mail")
    async def send_mail(self, order: MailOrder) -> str:
        self.mails.append(order)
        return self.message_id(order)

    @activity.defn(name="notify_staff")
    async def notify_staff(self, notice: StaffNotice) -> list[str]:
        self.notices.append(notice)
        self.notice_times.append(activity.info().current_attempt_scheduled_time)
        return ["someone@manao.eu"]

    @activity.defn(name="record_dossier_step")
    async def record_step(self, record: StepRecord) -> list[str]:
        """A step's events, mails and notices, recorded as the outbox would send them."""
        self.records.append(record)
        self.events.extend(record.events)
        self.mails.extend(record.mails)
        # the step's own instant (a local activity's scheduled time is the worker's clock,
        # not the time the test server skipped to)
        at = record.events[0].occurred_at if record.events else None
        for notice in record.notices:
            self.notices.append(notice)
            self.notice_times.append(at or activity.info().current_attempt_scheduled_time)
        return [self.message_id(order) for order in record.mails]

    @staticmethod
    def message_id(order: MailOrder) -> str:
        return f"<{order.reference}.{order.step}.sig@test>"

    @activity.defn(name="hand_over")
    async def hand_over(self, order: HandOver) -> dict[str, Any]:
        self.handovers.append(order)
        return {"ok": True, "service": order.service}

    def activities(self) -> list[Any]:
        return [
            self.publish,
            self.send_mail,
            self.notify_staff,
            self.record_step,
            self.hand_over,
        ]

    def published(self) -> list[Event]:
        """The events in the workflow's order: activities started together may finish in any
        order, and the read model applies each `seq` once, in order."""
        return sorted(self.events, key=lambda e: e.data["seq"])

    def types(self) -> list[str]:
        return [e.type.removeprefix("dossier.dossier.") for e in self.published()]

    def templates(self) -> list[str]:
        return [m.template for m in sorted(self.mails, key=lambda m: m.step)]

    def notice_kinds(self) -> list[str]:
        return [n.kind for n in self.notices]

    def seqs(self) -> list[int]:
        return [e.data["seq"] for e in self.published()]

    def timed_notices(self) -> list[tuple[str, datetime]]:
        return list(zip(self.notice_kinds(), self.notice_times, strict=True))


def opening(received_at: datetime, channel: str = "web", **kw: Any) -> DossierOpening:
    policy = kw.pop("policy", DossierPolicy())
    return DossierOpening(
        dossier_id=str(uuid.uuid4()),
        reference="D-2026-000042",
        channel=channel,
        requester_email="claire.martin@dupont-sa.fr",
        requester_name="Claire Martin",
        software="manao-compta",
        subject="Export FEC impossible",
        description="L'export s'arrête à 50 %.",
        received_at=received_at,
        first_response_due=first_response_due(
            DEFAULT_CALENDAR, received_at, policy.first_response_hours
        ),
        organisation_id=None,
        policy=policy,
        **kw,
    )


@asynccontextmanager
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER),
        data_converter=data_converter,
        # a liveness bound, not a speed check: the SDK's 5 s default failed on a loaded machine
        test_server_startup_timeout=timedelta(seconds=60),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@asynccontextmanager
async def running_worker(env: WorkflowEnvironment, fakes: Fakes) -> AsyncIterator[str]:
    queue = f"dossiers-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client, task_queue=queue, workflows=[DossierWorkflow], activities=fakes.activities()
    ):
        yield queue


async def start(env: WorkflowEnvironment, queue: str, o: DossierOpening) -> WorkflowHandle:
    return await env.client.start_workflow(
        DossierWorkflow.run, o, id=o.dossier_id, task_queue=queue
    )


async def skip_to(env: WorkflowEnvironment, when: datetime) -> None:
    """Move the test server's clock forward to `when`.

    The test server's clock starts at the real present and only moves forward, so scenarios are
    dated years ahead (2032: the same weekdays and holidays as 2027, from March on)."""
    now = await env.get_current_time()
    assert when > now - timedelta(seconds=5), f"the test clock is already at {now}, past {when}"
    if when > now:
        await env.sleep(when - now)


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (real time) until `check()` holds: activities run on the worker, a little later."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition still false after the timeout"
        await asyncio.sleep(0.02)


async def settled(handle: WorkflowHandle, timeout: float = 10.0) -> None:
    """Wait until the workflow is at rest: no activity in flight and no workflow task
    scheduled or running (events, mails, notices, hand-overs all done).

    No pending activity alone is not enough: when one completes, the server schedules a
    workflow task in the same write, and that task may publish more (a hand-over's answer, a
    mail's thread): until it has completed, the count of effects is not final."""
    deadline = time.monotonic() + timeout
    while not await _at_rest(handle):
        assert time.monotonic() < deadline, "the workflow is still busy after the timeout"
        await asyncio.sleep(0.02)


_TASK_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED: False,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED: False,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: True,
}


async def _at_rest(handle: WorkflowHandle) -> bool:
    if (await handle.describe()).raw_description.pending_activities:
        return False
    history = await handle.fetch_history()
    last_task = [_TASK_EVENTS[e.event_type] for e in history.events if e.event_type in _TASK_EVENTS]
    if not last_task or not last_task[-1]:
        return False
    # an activity that completed after the history was read shows as pending no more
    return not (await handle.describe()).raw_description.pending_activities


async def view_when(
    handle: WorkflowHandle, check: Callable[[DossierView], bool], timeout: float = 10.0
) -> DossierView:
    """Query the dossier until `check` holds (a signal or an activity's answer is applied by
    a later workflow task)."""
    deadline = time.monotonic() + timeout
    while not check(view := await handle.query(DossierWorkflow.view)):
        assert time.monotonic() < deadline, f"dossier still {view.status}: {view.details}"
        await asyncio.sleep(0.02)
    return view


def fact(dossier_id: str, type: str, id: str, **data: Any) -> Event:
    """A fact from the training, bugs or evolutions service, as the signal bridge forwards it."""
    return Event(id=id, type=type, data={"dossier_id": dossier_id, **data})


def paris(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=DEFAULT_CALENDAR.tz)


def at_about(actual: datetime, expected: datetime) -> bool:
    """A timer fires at its deadline plus the few milliseconds the worker takes."""
    return timedelta(0) <= actual - expected < timedelta(seconds=2)


def in_business_hours(at: datetime) -> bool:
    """Open per the default calendar, or a timer's few milliseconds after a closing (a deadline
    that runs out exactly at 12:00 or 18:00 falls due at that closing, R3)."""
    just_before = at - timedelta(seconds=2)
    return DEFAULT_CALENDAR.is_open(at) or DEFAULT_CALENDAR.business_time_between(
        just_before, at
    ) > timedelta(0)
