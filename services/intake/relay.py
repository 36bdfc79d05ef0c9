"""Intake's outbox senders: a committed request reaches NATS and starts its dossier (R13);
a mail reply reaches its dossier; intake's automatic mails leave."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from assistance import mail_once
from assistance.settings import Settings
from assistance.temporal import type_adapter
from services.dossier.state import DossierOpening
from services.intake.mail import repo as mail_repo
from workflows.dossier import DossierWorkflow

START_DOSSIER = "start_dossier"


def dossier_starter(temporal: Client, task_queue: str) -> Any:
    """Start the DossierWorkflow, idempotently: workflow id = dossier id.

    The outbox row holds the opening as JSON; it is read back as the workflow's typed input
    (the same conversion the workflow's data converter makes), so a row that does not fit
    fails here, in the relay, not in the workflow."""

    async def start(payload: dict[str, Any]) -> None:
        opening = type_adapter(DossierOpening).validate_python(payload)
        # Already started and since finished: nothing to do.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await temporal.start_workflow(
                DossierWorkflow.run,
                opening,
                id=opening.dossier_id,
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                rpc_timeout=timedelta(seconds=5),
            )

    return start


SIGNAL_DOSSIER = "signal_dossier"
SEND_MAIL = "send_mail"


def dossier_signaller(temporal: Client, pool: asyncpg.Pool) -> Any:
    """Deliver a signal (a mail reply: `customer_message`) to its dossier's workflow.

    Not started yet (its start row is still queued): raise, the outbox retries. Finished (closed
    past the reopen window): the mail goes back to quarantine, where a technician decides.
    """

    async def signal(payload: dict[str, Any]) -> None:
        handle = temporal.get_workflow_handle(payload["dossier_id"])
        try:
            await handle.signal(payload["signal"], payload["arg"], rpc_timeout=timedelta(seconds=5))
            return
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        description = await handle.describe(rpc_timeout=timedelta(seconds=5))
        if description.status == WorkflowExecutionStatus.RUNNING:
            raise RuntimeError("workflow running again; signal on the next attempt")
        if payload.get("mail_id"):
            await mail_repo.requarantine(
                pool, uuid.UUID(payload["mail_id"]), "dossier_finished", payload.get("reference")
            )

    return signal


def mail_sender(settings: Settings, pool: asyncpg.Pool) -> Any:
    """Send one automatic mail from intake (a bounce alert to a technician), at most once in
    practice (assistance/mail_once.py)."""

    async def send(payload: dict[str, Any]) -> None:
        message = EmailMessage()
        message["From"] = formataddr(("Assistance Manao", settings.mail_from))
        message["To"] = payload["to"]
        message["Subject"] = payload["subject"]
        message["Message-ID"] = payload["message_id"]
        message["Date"] = formatdate(localtime=False)
        message["Auto-Submitted"] = "auto-generated"
        message["X-Auto-Response-Suppress"] = "All"
        message["Content-Language"] = "fr"
        message.set_content(payload["text"])
        await mail_once.send_shared(pool, settings, "intake", message)

    return send
