"""Helpers for the training tests: the hand-over over real NATS, events on the stream, the
invitations the mail catcher caught."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats
from icalendar import Calendar
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import DeliverPolicy

from assistance.events import Event
from deploy.local.stack import CaughtMail
from tests.helpers import auth

SUBJECT = "commands.training.open"


@dataclass(frozen=True)
class TrainerUser:
    id: uuid.UUID
    name: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.token)


NewTrainer = Callable[..., Awaitable[TrainerUser]]


def hand_over_order(software: str, **overrides: Any) -> dict[str, Any]:
    """The JSON of services.dossier.state.HandOver, as the dossier workflow sends it."""
    order: dict[str, Any] = {
        "service": "training",
        "dossier_id": str(uuid.uuid4()),
        "reference": f"D-2026-{uuid.uuid4().int % 1_000_000:06d}",
        "software": software,
        "organisation_id": None,
        "requester_email": f"client-{uuid.uuid4().hex[:8]}@dupont-sa.fr",
        "requester_name": "Claire Martin",
        "subject": "Lettrage automatique",
        "description": "Comment lettrer automatiquement les relevés ?",
        "context": "Clôture mensuelle sur 3 sites",
        "need": "Paramétrer le lettrage automatique",
        "version": "5.2",
        "workaround": None,
        "attempt": 1,
    }
    order.update(overrides)
    return order


async def request_over_nats(url: str, order: dict[str, Any], timeout: float = 15) -> dict[str, Any]:
    """`commands.training.open` as the hand-over activity sends it; waits for a responder."""
    nc = await nats.connect(url)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                reply = await nc.request(SUBJECT, json.dumps(order).encode(), timeout=10)
                return json.loads(reply.data)  # type: ignore[no-any-return]
            except (NoRespondersError, NatsTimeout):
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await nc.drain()


async def stream_event(url: str, subject: str, event_id: str, timeout: float = 10) -> Event:
    """The event with this id on its JetStream stream (read from the start)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no event {event_id} on {subject} within {timeout}s")
            try:
                msg = await sub.next_msg(timeout=remaining)
            except NatsTimeout:
                continue
            event = Event.model_validate_json(msg.data)
            if event.id == event_id:
                return event
    finally:
        await nc.drain()


def calendar_of(mail: CaughtMail) -> Calendar:
    """The text/calendar part of a caught invitation, parsed."""
    part = next(p for p in mail.message().walk() if p.get_content_type() == "text/calendar")
    return Calendar.from_ical(part.get_content())
