"""One activity per step (decision 0022), on the whole system with real servers: a step's
events, customer mails and staff notices are written to the outbox in one transaction, once
(a retry writes nothing twice and answers the same Message-IDs), and the dossier's relay
publishes and sends them; a mail that cannot be sent is parked, shown in the « travail
bloqué » view, and sent once by an administrator's retry after the repair."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from assistance import db, directory
from assistance.bus import Bus
from assistance.directory import Role
from assistance.events import Event
from deploy.local.stack import LocalStack
from services.dossier.activities import MAIL, SOURCE, DossierActivities
from tests.helpers import auth, deposit_body, eventually
from workflows.types import MailOrder, StaffNotice, StepRecord


@pytest.fixture
async def pool(system: Any) -> AsyncIterator[asyncpg.Pool]:
    opened = await db.create_pool(system.settings.database_url, 4)
    try:
        yield opened
    finally:
        await opened.close()


async def _opened(http: httpx.AsyncClient, system: Any, subject: str) -> tuple[str, str]:
    deposited = await http.post("/api/v1/requests", json=deposit_body(subject=subject))
    assert deposited.status_code == 201, deposited.text
    dossier_id, reference = deposited.json()["id"], deposited.json()["reference"]
    staff = auth(system.tokens[Role.technician])

    async def opened() -> bool:
        got = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=staff)
        return got.status_code == 200 and any(e["kind"] == "opened" for e in got.json()["timeline"])

    await eventually(opened, timeout=60)
    return dossier_id, reference


def _mail(dossier_id: str, reference: str, step: int, subject: str) -> MailOrder:
    return MailOrder(
        dossier_id=dossier_id,
        reference=reference,
        step=step,
        template="response",
        to="claire.martin@dupont-sa.fr",
        context={"subject": subject, "text": "Menu Paramètres > Exports.", "author": "Thomas"},
    )


async def test_a_dossier_step_goes_through_the_outbox_once(
    http: httpx.AsyncClient, system: Any, stack: LocalStack, pool: asyncpg.Pool
) -> None:
    dossier_id, reference = await _opened(http, system, "Étape enregistrée")
    # the opening's event and acknowledgement went through the outbox, and were relayed
    rows = await pool.fetch(
        "SELECT kind, status, ordering_key FROM bus.outbox WHERE source = $1 "
        "AND ordering_key LIKE $2 || '%' ORDER BY id",
        SOURCE,
        dossier_id,
    )
    assert [r["kind"] for r in rows][:2] == ["publish", MAIL]
    assert rows[0]["ordering_key"] == dossier_id
    assert rows[1]["ordering_key"] == f"{dossier_id}:smtp"
    await stack.mail.wait_for(
        lambda m: (
            reference in str(m.message()["Subject"])
            and m.message()["Auto-Submitted"] == "auto-replied"
        ),
        timeout=30,
    )

    # one step written directly: an event, a mail, a notice; a retry writes nothing twice
    marker = uuid.uuid4().hex[:8]
    activities = DossierActivities(Bus(system.settings.nats_url), pool, system.settings)
    record = StepRecord(
        dossier_id=dossier_id,
        reference=reference,
        events=[
            Event(
                id=f"{dossier_id}:800",
                type="dossier.dossier.noted",
                data={
                    "dossier_id": dossier_id,
                    "seq": 800,
                    "timeline": {
                        "kind": "note",
                        "visibility": "internal",
                        "author": "Thomas",
                        "text": f"Note {marker}",
                        "data": {},
                    },
                },
            )
        ],
        mails=[_mail(dossier_id, reference, 801, f"Réponse {marker}")],
        notices=[
            StaffNotice(
                dossier_id=dossier_id,
                reference=reference,
                step=802,
                audience="admins",
                kind="escalation",
                subject=f"Avis {marker}",
                text="Aucune action.",
            )
        ],
    )
    first = await activities.record_step(record)
    again = await activities.record_step(record)
    assert first == again and len(first) == 1
    count = await pool.fetchval(
        "SELECT count(*) FROM bus.outbox WHERE source = $1 AND ordering_key LIKE $2 || '%'",
        SOURCE,
        dossier_id,
    )
    await activities.record_step(record)
    assert count == await pool.fetchval(
        "SELECT count(*) FROM bus.outbox WHERE source = $1 AND ordering_key LIKE $2 || '%'",
        SOURCE,
        dossier_id,
    )

    admins = await directory.emails_with_role(pool, Role.admin)
    await stack.mail.wait_for(lambda m: m.message()["Message-ID"] == first[0], timeout=30)
    for to in admins:
        await stack.mail.wait_for(
            lambda m, to=to: to in m.rcpt_tos and f"Avis {marker}" in str(m.message()["Subject"]),
            timeout=30,
        )
    assert await pool.fetchval(
        "SELECT state FROM dossier.outbound_mail WHERE message_id = $1", first[0]
    ) == ("sent")
    assert len([m for m in stack.mail.messages if m.message()["Message-ID"] == first[0]]) == 1


async def test_a_dossier_mail_that_cannot_be_sent_is_parked_shown_and_retried(
    http: httpx.AsyncClient, system: Any, stack: LocalStack, pool: asyncpg.Pool
) -> None:
    admin = auth(system.tokens[Role.admin])
    dossier_id, reference = await _opened(http, system, "Mail bloqué")
    marker = f"bloque_{uuid.uuid4().hex[:6]}"
    # the "bug" to repair later: the mail ledger refuses this subject
    await pool.execute(
        f"""ALTER TABLE dossier.outbound_mail ADD CONSTRAINT refuse_{marker}
            CHECK (subject NOT LIKE '%{marker}%') NOT VALID"""
    )
    try:
        activities = DossierActivities(Bus(system.settings.nats_url), pool, system.settings)
        record = StepRecord(
            dossier_id, reference, mails=[_mail(dossier_id, reference, 900, f"Réponse {marker}")]
        )
        [message_id] = await activities.record_step(record)
        row_id = await pool.fetchval(
            "SELECT id FROM bus.outbox WHERE source = $1 AND kind = $2 AND payload->>'step' = "
            "'900' AND ordering_key = $3",
            SOURCE,
            MAIL,
            f"{dossier_id}:smtp",
        )

        async def parked() -> bool:
            # its last attempt (what takes ten attempts over minutes in production)
            await pool.execute(
                "UPDATE bus.outbox SET attempts = 9, next_attempt_at = now() "
                "WHERE id = $1 AND status = 'pending' AND attempts BETWEEN 1 AND 8",
                row_id,
            )
            return (
                await pool.fetchval("SELECT status FROM bus.outbox WHERE id = $1", row_id)
                == "parked"
            )

        await eventually(parked, timeout=60)
        view = (await http.get("/api/v1/operations/stuck", headers=admin)).json()
        [item] = [
            p for p in view["parked"] if p["dossier_id"] == dossier_id and p["source"] == "outbox"
        ]
        assert item["label"] == "Envoi non abouti : mail d'un dossier (au client ou à l'équipe)"
        assert "CheckViolationError" in item["error"]
        assert not [m for m in stack.mail.messages if m.message()["Message-ID"] == message_id]

        # repair, then retry: the mail goes out once, with the Message-ID the step answered
        await pool.execute(f"ALTER TABLE dossier.outbound_mail DROP CONSTRAINT refuse_{marker}")
        got = await http.post(f"/api/v1/operations/stuck/{item['id']}/retry", headers=admin)
        assert got.status_code == 200, got.text
        await stack.mail.wait_for(lambda m: m.message()["Message-ID"] == message_id, timeout=30)

        async def done() -> bool:
            # marked done once the SMTP transaction has ended, a moment after the server got it
            status = await pool.fetchval("SELECT status FROM bus.outbox WHERE id = $1", row_id)
            return bool(status == "done")

        await eventually(done, timeout=30)
        assert len([m for m in stack.mail.messages if m.message()["Message-ID"] == message_id]) == 1
    finally:
        await pool.execute(
            f"ALTER TABLE dossier.outbound_mail DROP CONSTRAINT IF EXISTS refuse_{marker}"
        )
