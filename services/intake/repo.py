"""Intake storage: one transaction per accepted request (request + outbox rows)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from assistance import metrics, outbox
from assistance.clock import local
from assistance.events import Event
from services.intake import domain
from services.intake.models import Channel, DepositIn, DepositOut
from services.intake.relay import START_DOSSIER


async def record_request(
    conn: asyncpg.Connection,
    body: DepositIn,
    *,
    channel: Channel,
    received_at: datetime,
    first_response_due: datetime,
    organisation_id: uuid.UUID | None,
    deposited_by: uuid.UUID | None,
    technician_id: uuid.UUID | None = None,
    caller_phone: str | None = None,
    extra: dict[str, Any] | None = None,
) -> DepositOut:
    """Store the request and its outbox rows; call inside a transaction.

    Durable before acknowledged: the caller answers 201 only after this commits, and the
    relay takes it on to NATS and Temporal from the outbox. Until the `received` event reaches
    the dossier read model, the dossier service reads it from the outbox (R13).
    """
    dossier_id = uuid.uuid4()
    number = await conn.fetchval("SELECT nextval('intake.reference_seq')")
    reference = domain.reference(received_at.year, number)
    await conn.execute(
        """INSERT INTO intake.requests (id, reference, channel, requester_email, requester_name,
               organisation_id, software, subject, description, caller_phone, deposited_by,
               technician_id, received_at, first_response_due)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)""",
        dossier_id,
        reference,
        channel,
        str(body.requester.email),
        body.requester.name,
        organisation_id,
        body.software,
        body.subject,
        body.description,
        caller_phone,
        deposited_by,
        technician_id,
        received_at,
        first_response_due,
    )
    opening: dict[str, Any] = {
        "dossier_id": str(dossier_id),
        "reference": reference,
        "channel": channel,
        "requester_email": str(body.requester.email),
        "requester_name": body.requester.name,
        "organisation_id": str(organisation_id) if organisation_id else None,
        "software": body.software,
        "subject": body.subject,
        "description": body.description,
        "received_at": received_at.isoformat(),
        "first_response_due": first_response_due.isoformat(),
        "technician_id": str(technician_id) if technician_id else None,
        "caller_phone": caller_phone,
        **(extra or {}),
    }
    received = Event(
        id=f"{dossier_id}:received",
        type="intake.request.received",
        occurred_at=received_at,
        data=opening,
    )
    await outbox.enqueue_many(
        conn,
        "intake",
        [("publish", received.model_dump(mode="json")), (START_DOSSIER, opening)],
    )
    metrics.DEPOSITS.add(1, {"channel": channel})
    return DepositOut(
        id=dossier_id,
        reference=reference,
        status="new",
        received_at=local(received_at),
        first_response_due=local(first_response_due),
    )
