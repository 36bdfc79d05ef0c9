"""Sending lifecycle commands to a dossier's workflow (Temporal updates) and reading back
the dossier as it now is."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from assistance.clock import local
from assistance.directory import Principal
from assistance.errors import Conflict, NotFound, Unavailable
from services.dossier import repo
from services.dossier.models import CommandPending, DossierOut
from services.dossier.state import Actor, DossierView

PROJECTION_WAIT_S = 3.0
UPDATE_WAIT_S = 10.0  # a command not answered by then is answered 202 (its outcome pending)
OUTCOME_WAIT_S = 2.0  # reading a pending outcome waits this long before answering 202 again
OUTCOME_UNKNOWN = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)


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
    command_id: str,
) -> DossierOut | CommandPending:
    """Run the update, its id being `command_id` (the request's `Idempotency-Key`, made
    unique per caller and route, else a server-generated id): Temporal runs an update id once
    per workflow run, so a retried command is not applied twice even if the first answer was
    lost. Refusals become 409 with the workflow's reason; no answer within `UPDATE_WAIT_S`
    (Temporal or the worker paused or down) becomes 202 with the place to read the outcome,
    never a 5xx for a command that may still be applied."""
    if not await repo.is_visible(pool, dossier_id, who):
        raise NotFound("dossier_not_found", "Dossier introuvable.")
    handle = client.get_workflow_handle(str(dossier_id))
    try:
        view: DossierView = await asyncio.wait_for(
            handle.execute_update(update, command, id=command_id, result_type=DossierView),
            UPDATE_WAIT_S,
        )
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        return pending(dossier_id, command_id)
    except WorkflowUpdateFailedError as exc:
        raise _refusal(exc) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # not started yet: nothing was applied
            raise Unavailable(
                "dossier_opening",
                "Le dossier est en cours d'ouverture ; réessayez dans un instant.",
            ) from None
        if exc.status in OUTCOME_UNKNOWN:  # the update may have been admitted
            return pending(dossier_id, command_id)
        raise Unavailable(
            "workflow_unavailable",
            "Le suivi des dossiers est momentanément indisponible ; réessayez.",
        ) from None
    return await read_back(pool, dossier_id, who, view)


async def outcome(
    client: Client, pool: asyncpg.Pool, dossier_id: uuid.UUID, who: Principal, command_id: str
) -> DossierOut | CommandPending:
    """The outcome of a command answered 202: the dossier once applied, 409 if refused,
    202 while the workflow has not answered, 404 if Temporal does not know the update (never
    received, or the workflow has since continued as new: docs/decisions/0012)."""
    if not await repo.is_visible(pool, dossier_id, who):
        raise NotFound("dossier_not_found", "Dossier introuvable.")
    handle = client.get_workflow_handle(str(dossier_id)).get_update_handle(
        command_id, result_type=DossierView
    )
    try:
        view: DossierView = await asyncio.wait_for(handle.result(), OUTCOME_WAIT_S)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        return pending(dossier_id, command_id)
    except WorkflowUpdateFailedError as exc:
        raise _refusal(exc) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(
                "command_not_found",
                "Commande inconnue de ce dossier : renvoyez-la avec la même clé d'idempotence.",
            ) from None
        return pending(dossier_id, command_id)
    return await read_back(pool, dossier_id, who, view)


def pending(dossier_id: uuid.UUID, command_id: str) -> CommandPending:
    return CommandPending(
        command_id=command_id,
        dossier_id=dossier_id,
        location=f"/api/v1/dossiers/{dossier_id}/commands/{command_id}",
    )


def _refusal(exc: WorkflowUpdateFailedError) -> Conflict:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        return Conflict(cause.type or "refused", cause.message)
    return Conflict("refused", str(cause or exc))


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
