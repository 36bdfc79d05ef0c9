"""Helpers for the bugs service's tests: hand-overs over real NATS, events read back from
the BUGS stream, developer steps over real HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import asyncpg
import httpx
from nats.js.api import ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from assistance import directory, outbox
from assistance.bus import Bus
from assistance.directory import Role
from assistance.events import Event
from deploy.local.stack import LocalStack
from tests.helpers import auth, deposit_body, eventually

SUBJECT = "commands.bugs.open"


def software() -> str:
    """A software code of its own, so a test's releases touch only its bugs."""
    return f"logiciel-{uuid.uuid4().hex[:8]}"


def order(**overrides: Any) -> dict[str, Any]:
    """A hand-over as the workflow sends it (`services.dossier.state.HandOver`)."""
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
    """The events of one bug on the BUGS stream, in order (what the workflows receive).

    Reads until the consumer has nothing pending; messages that are not events (other
    tests publish poison on purpose) are skipped."""
    subject = f"bugs.bug.{kind}" if kind else "bugs.>"
    sub = await bus.js.pull_subscribe(
        subject, stream="BUGS", config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    found: list[Event] = []
    try:
        while (await sub.consumer_info()).num_pending > 0:
            try:
                msgs = await sub.fetch(500, timeout=2)
            except TimeoutError:  # nats' own timeout error derives from it
                continue
            for msg in msgs:
                await msg.ack()
                try:
                    event = Event.model_validate_json(msg.data)
                except ValidationError:
                    continue
                if event.data.get("bug_id") == bug_id:
                    found.append(event)
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
    http: httpx.AsyncClient,
    tokens: dict[Role, str],
    bug_id: str,
    *,
    upto: str,
    fix_version: str = "5.3",
) -> dict[str, Any]:
    """The developer's steps over HTTP, up to `reproduced`, `diagnosis` or `fix-completed`."""
    dev = auth(tokens[Role.developer])
    base = f"/api/v1/bugs/{bug_id}"
    steps = [
        ("claim", None),
        ("reproduced", {"steps": "Exporter un exercice de 13 mois", "environment": "Windows 11"}),
        ("diagnosis", {"diagnosis": "Débordement de la pagination au 13e mois."}),
        ("fix-completed", {"version": fix_version, "change_reference": "MR !4242", "notes": ""}),
    ]
    answer: dict[str, Any] = {}
    for path, body in steps:
        r = await http.post(f"{base}/{path}", headers=dev, json=body)
        assert r.status_code == 200, (path, r.text)
        answer = r.json()
        if path == upto:
            break
    return answer


# --- dossiers over the real stack (the dossier command API) ------------------------------------


async def registered_software(pool: asyncpg.Pool) -> str:
    """A software of the directory of its own, so a test's releases touch only its bugs
    (named to sort after the demo softwares, which some tests expect first)."""
    code = f"test-bugs-{uuid.uuid4().hex[:8]}"
    await directory.add_software(pool, code, f"Logiciel {code}")
    await directory.add_software_version(pool, code, "5.2")
    return code


async def bug_dossier(
    http: httpx.AsyncClient,
    tokens: dict[Role, str],
    subject: str,
    software_code: str = "manao-compta",
) -> str:
    """Deposit → take → diagnosis "bug" (R5): a dossier at the workaround gate (R8)."""
    r = await http.post(
        "/api/v1/requests", json=deposit_body(subject=subject, software=software_code)
    )
    assert r.status_code == 201, r.text
    dossier_id: str = r.json()["id"]
    tech = auth(tokens[Role.technician])
    base = f"/api/v1/dossiers/{dossier_id}"

    async def opened() -> bool:  # the workflow runs (its own entry): commands can be sent
        got = await http.get(base, headers=tech)
        return got.status_code == 200 and any(e["kind"] == "opened" for e in got.json()["timeline"])

    await eventually(opened, timeout=10)
    taken = await http.post(f"{base}/take", headers=tech)
    assert taken.status_code == 200, taken.text
    diagnosed = await http.post(
        f"{base}/diagnosis",
        headers=tech,
        json={
            "kind": "bug",
            "context": "Cabinet comptable, clôture annuelle",
            "need": "Exporter le FEC de l'exercice",
            "version": "5.2",
        },
    )
    assert diagnosed.status_code == 200, diagnosed.text
    return dossier_id


async def dossier_when(
    http: httpx.AsyncClient,
    token: str,
    dossier_id: str,
    check: Callable[[dict[str, Any]], bool],
    timeout: float = 15,
) -> dict[str, Any]:
    """The dossier as `token`'s holder reads it, once `check` holds."""

    async def probe() -> dict[str, Any] | None:
        got = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=auth(token))
        body: dict[str, Any] = got.json()
        return body if got.status_code == 200 and check(body) else None

    return await eventually(probe, timeout=timeout, every=0.2)


def bug_state(dossier: dict[str, Any]) -> str | None:
    """The bug state the dossier shows (the workflow's record of the bugs service's events)."""
    bug = dossier["details"].get("bug") or {}
    return bug.get("state")


def mails_to(stack: LocalStack, address: str, reference: str) -> list[EmailMessage]:
    found = []
    for caught in stack.mail.messages:
        message = message_from_bytes(caught.data, policy=default_policy)
        if address in caught.rcpt_tos and f"[{reference}]" in str(message["Subject"]):
            assert isinstance(message, EmailMessage)
            found.append(message)
    return found


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def mail_saying(
    stack: LocalStack, address: str, reference: str, words: str, timeout: float = 15
) -> EmailMessage:
    async def probe() -> EmailMessage | None:
        return next((m for m in mails_to(stack, address, reference) if words in text_of(m)), None)

    return await eventually(probe, timeout=timeout, every=0.2)
