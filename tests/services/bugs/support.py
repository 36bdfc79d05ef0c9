"""Helpers for the bugs service's tests: hand-overs over real NATS, events read back from
the BUGS stream, developer steps over real HTTP."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx
from nats.js.api import ConsumerConfig, DeliverPolicy

from assistance import outbox
from assistance.bus import Bus
from assistance.directory import Role
from assistance.events import Event
from tests.helpers import auth, eventually

SUBJECT = "commands.bugs.open"


def software() -> str:
    """A software code of its own, so a test's releases touch only its bugs."""
    return f"logiciel-{uuid.uuid4().hex[:8]}"


def order(**overrides: Any) -> dict[str, Any]:
    """A hand-over as the workflow sends it (`workflows.types.HandOver`)."""
    dossier_id = str(uuid.uuid4())
    body: dict[str, Any] = {
        "service": "bugs",
        "dossier_id": dossier_id,
        "reference": f"D-2026-{uuid.UUID(dossier_id).int % 1_000_000:06d}",
        "software": "manao-compta",
        "organisation_id": None,
        "requester_email": "claire.martin@dupont-sa.fr",
        "requester_name": "Claire Martin",
        "subject": "Export FEC impossible",
        "description": "L'export s'arrête à 50 %.",
        "context": "Clôture mensuelle",
        "need": "Exporter le FEC",
        "version": "5.2",
        "workaround": "Exporter par trimestre.",
        "attempt": 1,
    }
    body.update(overrides)
    return body


async def hand_over(bus: Bus, body: dict[str, Any]) -> dict[str, Any]:
    assert bus.nc is not None
    reply = await bus.nc.request(SUBJECT, json.dumps(body).encode(), timeout=10)
    answer: dict[str, Any] = json.loads(reply.data)
    return answer


async def new_bug(bus: Bus, **overrides: Any) -> tuple[str, str]:
    """A bug opened by a hand-over: (bug id, dossier id)."""
    body = order(**overrides)
    answer = await hand_over(bus, body)
    assert answer["ok"] is True and answer["created"] is True, answer
    return answer["bug_id"], body["dossier_id"]


async def settled(pool: asyncpg.Pool) -> None:
    """Every fact the bugs service committed is on the BUGS stream."""

    async def empty() -> bool:
        return await outbox.backlog(pool, "bugs") == 0

    await eventually(empty, timeout=10)


async def bug_events(bus: Bus, bug_id: str, kind: str | None = None) -> list[Event]:
    """The events of one bug on the BUGS stream, in order (what the workflows receive)."""
    subject = f"bugs.bug.{kind}" if kind else "bugs.>"
    sub = await bus.js.pull_subscribe(
        subject, stream="BUGS", config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    found: list[Event] = []
    try:
        while True:
            try:
                msgs = await sub.fetch(500, timeout=0.5)
            except TimeoutError:  # nats' own timeout error derives from it
                break
            for msg in msgs:
                event = Event.model_validate_json(msg.data)
                if event.data.get("bug_id") == bug_id:
                    found.append(event)
                await msg.ack()
    finally:
        await sub.unsubscribe()
    return found


async def publish(bus: Bus, type_: str, data: dict[str, Any], event_id: str | None = None) -> str:
    event = Event(id=event_id or str(uuid.uuid4()), type=type_, data=data)
    await bus.publish(event)
    return event.id


async def released(bus: Bus, software_code: str, version: str, event_id: str | None = None) -> str:
    """What the evolutions service publishes when a version ships."""
    return await publish(
        bus,
        "evolutions.version.released",
        {"software": software_code, "version": version, "released_at": "2026-12-10T10:00:00+01:00"},
        event_id,
    )


async def develop(
    http: httpx.AsyncClient, tokens: dict[Role, str], bug_id: str, *, upto: str
) -> dict[str, Any]:
    """The developer's steps over HTTP, up to `reproduced`, `diagnosis` or `fix-completed`."""
    dev = auth(tokens[Role.developer])
    base = f"/api/v1/bugs/{bug_id}"
    steps = [
        ("claim", None),
        ("reproduced", {"steps": "Exporter un exercice de 13 mois", "environment": "Windows 11"}),
        ("diagnosis", {"diagnosis": "Débordement de la pagination au 13e mois."}),
        ("fix-completed", {"version": "5.3", "change_reference": "MR !4242", "notes": ""}),
    ]
    answer: dict[str, Any] = {}
    for path, body in steps:
        r = await http.post(f"{base}/{path}", headers=dev, json=body)
        assert r.status_code == 200, (path, r.text)
        answer = r.json()
        if path == upto:
            break
    return answer
