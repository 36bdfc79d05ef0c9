"""Sending lifecycle commands to a dossier's workflow (Temporal updates) and reading back
the dossier as it now is."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from assistance.clock import local
from assistance.directory import Principal
from assistance.errors import Conflict, NotFound, Unavailable
from services.dossier import repo
from services.dossier.models import DossierOut
from workflows.types import Actor, DossierView

PROJECTION_WAIT_S = 3.0


def actor_of(who: Principal) -> Actor:
    assert who.user_id is not None and who.role is not None
    return Actor(user_id=str(who.user_id), role=who.role.value, name=who.name)


async def send(
    client: Client,
    pool: asyncpg.Pool,
    dossier_id: uuid.UUID,
    who: Principal,
    update: str,
    command: Any,
    update_id: str | None = None,
) -> DossierOut:
    """Run the update; refusals become 409 with the workflow's reason.

    `update_id` (from the request's Idempotency-Key) makes a retry the same Temporal update:
    the server answers it with the first one's outcome instead of applying it again."""
    if not await repo.is_visible(pool, dossier_id, who):
        raise NotFound("dossier_not_found", "Dossier introuvable.")
    handle = client.get_workflow_handle(str(dossier_id))
    try:
        view: DossierView = await handle.execute_update(
            update, command, id=update_id, result_type=DossierView
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            raise Conflict(cause.type or "refused", cause.message) from None
        raise Conflict("refused", str(cause or exc)) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise Unavailable(
                "dossier_opening",
                "Le dossier est en cours d'ouverture ; réessayez dans un instant.",
            ) from None
        raise Unavailable(
            "workflow_unavailable",
            "Le suivi des dossiers est momentanément indisponible ; réessayez.",
        ) from None
    return await read_back(pool, dossier_id, who, view)


async def read_back(
    pool: asyncpg.Pool, dossier_id: uuid.UUID, who: Principal, view: DossierView
) -> DossierOut:
    """The read model once it has caught up with the command's events, with the workflow's
    own view laid over it if the projection lags (NATS slow or down)."""
    deadline = asyncio.get_running_loop().time() + PROJECTION_WAIT_S
    while True:
        last = await pool.fetchval(
            "SELECT last_seq FROM dossier.dossiers WHERE id = $1", dossier_id
        )
        if (last or 0) >= view.seq or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    found = await repo.get_dossier(pool, dossier_id, who)
    if found is None:  # accepted, not projected yet (NATS down): the workflow's view on top
        found = await repo.just_deposited(pool, dossier_id, who)
    if found is None:
        raise NotFound("dossier_not_found", "Dossier introuvable.")
    technician = (
        {"id": view.technician_id, "name": view.technician_name} if view.technician_id else None
    )
    return found.model_copy(
        update={
            "status": view.status,
            "kind": view.kind,
            "technician": technician,
            "first_responded_at": local(view.first_responded_at),
            "closed_at": local(view.closed_at),
            "resolution": view.resolution,
        }
    )
