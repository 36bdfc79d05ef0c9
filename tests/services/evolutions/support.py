"""Helpers for the evolutions tests: hand-overs over real NATS, mails caught, outbox events."""

from __future__ import annotations

import asyncio
import json
import uuid
from email.message import EmailMessage
from typing import Any

import asyncpg
from nats.aio.client import Client as NATS

from deploy.local.stack import LocalStack
from services.evolutions.handover import SUBJECT
from tests.helpers import eventually

PM_EMAIL = "produit@manao.eu"
PROJECT_EMAIL = "projet@manao.eu"
TECH_EMAIL = "tech@manao.eu"


def hand_over_order(software: str, **overrides: Any) -> dict[str, Any]:
    """The JSON of `services.dossier.state.HandOver`, as the dossier workflow sends it."""
    order: dict[str, Any] = {
        "service": "evolutions",
        "dossier_id": str(uuid.uuid4()),
        "reference": f"D-2026-{uuid.uuid4().int % 1_000_000:06d}",
        "software": software,
        "organisation_id": None,
        "requester_email": "claire.martin@dupont-sa.fr",
        "requester_name": "Claire Martin",
        "subject": "Export FEC par établissement",
        "description": "Nous voudrions un export FEC par établissement.",
        "context": "Cabinet comptable, 3 sites",
        "need": "Un fichier FEC par site",
        "version": "5.2",
        "workaround": None,
        "attempt": 1,
    }
    order.update(overrides)
    return order


async def hand_over(nc: NATS, order: dict[str, Any]) -> dict[str, Any]:
    reply = await nc.request(SUBJECT, json.dumps(order).encode(), timeout=10)
    answer: dict[str, Any] = json.loads(reply.data)
    return answer


def parsed(stack: LocalStack) -> list[tuple[list[str], EmailMessage]]:
    return [(m.rcpt_tos, m.message()) for m in stack.mail.messages]


def mails(stack: LocalStack, to: str, subject_part: str) -> list[EmailMessage]:
    return [
        msg for rcpt, msg in parsed(stack) if to in rcpt and subject_part in str(msg["Subject"])
    ]


async def settled(stack: LocalStack, to: str, subject_part: str, count: int) -> list[EmailMessage]:
    """Wait for `count` mails, then a little more, so a duplicate would have arrived too.

    The count is taken once per poll: a predicate given to `wait_for` runs once per caught
    mail, and one that parsed every caught mail each time was quadratic; after the training and
    bugs tests (about a hundred mails) it held the event loop the whole system runs on for
    seconds at a time, and mails and events timed out."""

    async def enough() -> bool:
        return len(mails(stack, to, subject_part)) >= count

    await eventually(enough, timeout=15)
    await asyncio.sleep(1.5)
    return mails(stack, to, subject_part)


async def events(pool: asyncpg.Pool, kind: str, **match: str) -> list[dict[str, Any]]:
    """The events the service wrote to its outbox, of one type, matching data fields."""
    rows = await pool.fetch(
        """SELECT payload FROM bus.outbox WHERE source = 'evolutions' AND kind = 'publish'
           AND payload->>'type' = $1 ORDER BY id""",
        f"evolutions.{kind}",
    )
    found = [r["payload"] for r in rows]
    return [e for e in found if all(str(e["data"].get(k)) == v for k, v in match.items())]
