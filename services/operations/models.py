"""The « travail bloqué » API's payloads."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class ParkedOut(BaseModel):
    id: int
    source: str
    label: str
    subject: str
    dossier_id: uuid.UUID | None
    reference: str | None
    error: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    state: str
    acted_by: str | None
    acted_at: datetime | None


class OutboxFailingOut(BaseModel):
    id: int
    label: str
    dossier_id: uuid.UUID | None
    reference: str | None
    attempts: int
    error: str | None
    created_at: datetime
    next_attempt_at: datetime


class ActivityRetryingOut(BaseModel):
    workflow_id: str
    label: str
    dossier_id: uuid.UUID | None
    attempt: int
    error: str
    first_failed_at: datetime
    last_failed_at: datetime


class WorkflowFailedOut(BaseModel):
    workflow_id: str
    run_id: str
    dossier_id: uuid.UUID | None
    label: str
    status: str
    closed_at: datetime | None


class ConsumerLagOut(BaseModel):
    stream: str
    name: str
    label: str
    pending: int
    unacknowledged: int
    redelivered: int


class StuckCounts(BaseModel):
    parked: int
    outbox_failing: int
    activities_retrying: int
    workflows_failed: int
    consumer_lag: int


class StuckOut(BaseModel):
    counts: StuckCounts
    parked: list[ParkedOut]
    outbox_failing: list[OutboxFailingOut]
    activities_retrying: list[ActivityRetryingOut]
    workflows_failed: list[WorkflowFailedOut]
    consumers: list[ConsumerLagOut]
    unavailable: list[str]


class WorkflowActionOut(BaseModel):
    """What an administrator did about a stopped run: `retried` (reset; `new_run_id` is the run
    that goes on) or `discarded` (acknowledged)."""

    workflow_id: str
    run_id: str
    dossier_id: uuid.UUID | None
    label: str
    status: str
    state: str
    new_run_id: str | None
    acted_by: str
    acted_at: datetime
