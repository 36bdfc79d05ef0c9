"""The « travail bloqué » API, for administrators (docs/decisions/0013, issue 11 item 6):
parked items, outbox rows failing, activities retrying, failed workflows, consumer lag; the
two actions on a parked item, retry after repair and discard, and the same two on a stopped
workflow (services/operations/stopped.py). The writes are idempotent in effect (a second call
answers the item as the first left it; a second retry of a workflow finds it running again:
409) and accept `Idempotency-Key` like every write."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, EmailStr, Field

from assistance import audit, directory
from assistance.boundary import Moment, Offset
from assistance.directory import Principal
from assistance.errors import Conflict, NotFound, Unavailable
from assistance.text import Line
from assistance.web import Admin, PoolDep, client_of, refusals
from services.operations import erasure, personal_data, stopped, stuck
from services.operations.models import ParkedOut, StuckOut, WorkflowActionOut

if TYPE_CHECKING:
    from assistance.runtime import Runtime

router = APIRouter(prefix="/api/v1/operations", tags=["operations"])

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=200, description="Rejouer sans double effet"),
]
REFUSALS = refusals(forbidden="Réservé aux administrateurs")
ACTION_REFUSALS = refusals(
    {
        404: "Élément introuvable",
        409: "Action impossible dans l'état de l'élément",
        422: "Paramètre invalide",
        503: "Une dépendance nécessaire à la relance est indisponible",
    },
    forbidden="Réservé aux administrateurs",
)


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


@router.get(
    "/stuck",
    response_model=StuckOut,
    responses=REFUSALS,
    summary="Travail bloqué : éléments mis de côté, envois en échec, retards",
)
async def stuck_work(
    request: Request,
    who: Admin,
    state: Annotated[Literal["open", "retried", "discarded", "all"], Query()] = "open",
) -> dict[str, Any]:
    """`counts` is what a monitor reads (`counts.parked` > 0: someone must look)."""
    rt = _runtime(request)
    after = rt.settings.stuck_activity_attempts
    workflows = await stuck.failed_workflows(rt.temporal, rt.pool)
    lag = await stuck.consumer_lag(rt.bus)
    counts = await stuck.counts(rt.pool, after)
    counts["workflows_failed"] = len(workflows or [])
    counts["consumer_lag"] = sum(c["pending"] for c in lag or [])
    return {
        "counts": counts,
        "parked": await stuck.parked(rt.pool, state),
        "outbox_failing": await stuck.outbox_failing(rt.pool),
        "activities_retrying": await stuck.activities_retrying(rt.pool, after),
        "workflows_failed": workflows or [],
        "consumers": lag or [],
        "unavailable": [
            name for name, got in (("temporal", workflows), ("nats", lag)) if got is None
        ],
    }


async def _act(request: Request, who: Principal, parked_id: int, action: str) -> dict[str, Any]:
    rt = _runtime(request)
    try:
        return await stuck.act(rt.pool, rt.bus, rt.temporal, parked_id, action, who.name)
    except stuck.NotFound:
        raise NotFound("parked_not_found", "Élément introuvable.") from None
    except stuck.NotPossible as exc:
        if str(exc) in ("temporal",):
            raise Unavailable("unavailable", "Temporal est indisponible, réessayez.") from None
        raise Conflict(
            "parked_not_open",
            "Cet élément a déjà été traité : il n'est plus en attente.",
        ) from None


@router.post(
    "/stuck/{parked_id}/retry",
    response_model=ParkedOut,
    responses=ACTION_REFUSALS,
    summary="Relancer un élément mis de côté, une fois la cause réparée",
)
async def retry(
    request: Request, parked_id: int, who: Admin, key: IdempotencyKey = None
) -> dict[str, Any]:
    return await _act(request, who, parked_id, "retry")


@router.post(
    "/stuck/{parked_id}/discard",
    response_model=ParkedOut,
    responses=ACTION_REFUSALS,
    summary="Abandonner un élément mis de côté",
)
async def discard(
    request: Request, parked_id: int, who: Admin, key: IdempotencyKey = None
) -> dict[str, Any]:
    return await _act(request, who, parked_id, "discard")


# --- stopped workflows ------------------------------------------------------------------------

WorkflowId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@+-]*$",
        description="Identifiant du workflow (pour un suivi de dossier : l'id du dossier)",
    ),
]
WORKFLOW_RETRY_REFUSALS = refusals(
    {
        404: "Suivi introuvable",
        409: "Le suivi n'est pas arrêté (il tourne, ou s'est terminé normalement), a déjà été "
        "marqué comme traité, ou n'a jamais avancé",
        422: "Identifiant invalide",
        503: "Temporal est indisponible",
    },
    forbidden="Réservé aux administrateurs",
)
WORKFLOW_DISCARD_REFUSALS = refusals(
    {
        404: "Suivi introuvable",
        409: "Le suivi n'est pas arrêté, ou a déjà été relancé",
        422: "Identifiant invalide",
        503: "Temporal est indisponible",
    },
    forbidden="Réservé aux administrateurs",
)
NOT_STOPPED = {
    "retry": "Ce suivi n'est pas arrêté : rien à relancer.",
    "discard": "Ce suivi n'est pas arrêté : rien à marquer comme traité.",
}
ALREADY_HANDLED = {
    "retry": "Ce suivi a déjà été marqué comme traité : il n'est plus en attente.",
    "discard": "Ce suivi a déjà été relancé : il n'est plus en attente.",
}


async def _act_on_workflow(
    request: Request, who: Principal, workflow_id: str, action: Literal["retry", "discard"]
) -> dict[str, Any]:
    rt = _runtime(request)
    act = stopped.retry if action == "retry" else stopped.discard
    try:
        return await act(rt.pool, rt.temporal, workflow_id, who.name)
    except stopped.NotFound:
        raise NotFound("workflow_not_found", "Suivi introuvable.") from None
    except stopped.NotStopped:
        raise Conflict("workflow_not_stopped", NOT_STOPPED[action]) from None
    except stopped.AlreadyHandled:
        raise Conflict("workflow_already_handled", ALREADY_HANDLED[action]) from None
    except stopped.NeverRan:
        raise Conflict(
            "workflow_never_ran",
            "Ce suivi s'est arrêté avant sa première étape : il ne peut pas être relancé.",
        ) from None
    except stopped.Unreachable:
        raise Unavailable("unavailable", "Temporal est indisponible, réessayez.") from None


@router.post(
    "/workflows/{workflow_id}/retry",
    response_model=WorkflowActionOut,
    responses=WORKFLOW_RETRY_REFUSALS,
    summary="Relancer un suivi arrêté, une fois la cause réparée",
)
async def retry_workflow(
    request: Request, workflow_id: WorkflowId, who: Admin, key: IdempotencyKey = None
) -> dict[str, Any]:
    """The last run (failed, terminated or timed out) is reset to its last completed workflow
    task: a new run replays it with the current code and goes on. Once per run: a second call
    finds the workflow running and answers 409 (`workflow_not_stopped`); the same
    `Idempotency-Key` replays the first answer. Recorded in the dossier's history."""
    return await _act_on_workflow(request, who, workflow_id, "retry")


@router.post(
    "/workflows/{workflow_id}/discard",
    response_model=WorkflowActionOut,
    responses=WORKFLOW_DISCARD_REFUSALS,
    summary="Marquer un suivi arrêté comme traité",
)
async def discard_workflow(
    request: Request, workflow_id: WorkflowId, who: Admin, key: IdempotencyKey = None
) -> dict[str, Any]:
    """The stopped last run is acknowledged (repaired by hand, or nothing left to do): it
    leaves the list and the workflow stays stopped. A second call answers the same.
    Recorded in the dossier's history."""
    return await _act_on_workflow(request, who, workflow_id, "discard")


# --- access (issue 13) ---------------------------------------------------------------------------


class AccessRevoked(BaseModel):
    user_id: uuid.UUID
    tokens_revoked: int


@router.post(
    "/users/{user_id}/revoke-access",
    response_model=AccessRevoked,
    responses={**REFUSALS, 404: {"description": "Utilisateur inconnu"}},
    summary="Révoquer toutes les sessions et tous les jetons d'un utilisateur",
)
async def revoke_access(
    request: Request, user_id: uuid.UUID, pool: PoolDep, who: Admin, key: IdempotencyKey = None
) -> AccessRevoked:
    """Every API token of the user revoked; their site sessions die with them (a site session
    lives only while its token does). Again: 0 revoked, same effect."""
    if await directory.principal_by_id(pool, user_id) is None:
        raise NotFound("user_not_found", "Utilisateur inconnu.")
    async with pool.acquire() as conn, conn.transaction():
        revoked = await directory.revoke_user_tokens(conn, user_id)
        await audit.record(
            conn,
            who,
            "permission.access_revoked",
            str(user_id),
            client_of(request),
            tokens_revoked=revoked,
        )
    return AccessRevoked(user_id=user_id, tokens_revoked=revoked)


# --- audit (issue 13 item 6) ----------------------------------------------------------------------

AUDIT_COLUMNS = (
    "id",
    "at",
    "actor_id",
    "actor_email",
    "actor_role",
    "action",
    "target",
    "client_address",
    "details",
)


class AuditEvent(BaseModel):
    id: int
    at: datetime
    actor_id: uuid.UUID | None
    actor_email: str
    actor_role: str
    action: str
    target: str
    client_address: str
    details: dict[str, Any]


@router.get(
    "/audit",
    response_model=list[AuditEvent],
    responses={
        **REFUSALS,
        422: {"description": "Paramètre invalide"},
        200: {"content": {"text/csv": {}}, "description": "Les événements, du plus récent"},
    },
    summary="Journal d'audit : qui a fait quoi, quand, d'où",
)
async def audit_trail(
    pool: PoolDep,
    who: Admin,
    since: Moment | None = None,
    until: Moment | None = None,
    actor: uuid.UUID | None = None,
    action: Annotated[Line | None, Query(max_length=100, description="Préfixe")] = None,
    target: Annotated[Line | None, Query(max_length=200)] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json ou csv")] = "json",
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    offset: Offset = 0,
) -> Any:
    """Staff reads of dossiers, sign-ins, permission changes; `format=csv` for an export."""
    found = await audit.events(
        pool,
        since=since,
        until=until,
        actor=actor,
        action=action,
        target=target,
        limit=limit,
        offset=offset,
    )
    if format == "json":
        return found
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(AUDIT_COLUMNS)
    for event in found:
        row = {**event, "details": json.dumps(event["details"], ensure_ascii=False)}
        writer.writerow([_csv_cell(row[c]) for c in AUDIT_COLUMNS])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


def _csv_cell(value: Any) -> str:
    """No formula injection when the export is opened in a spreadsheet."""
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- personal data (RGPD, issue 13 item 5) --------------------------------------------------------


@router.get(
    "/personal-data",
    responses={
        **REFUSALS,
        422: {"description": "Adresse invalide"},
        200: {
            "content": {"application/json": {}, "application/zip": {}},
            "description": "Tout ce que le centre détient sur la personne",
        },
    },
    summary="Exporter les données personnelles d'une personne (droit d'accès)",
)
async def export_personal_data(
    request: Request,
    pool: PoolDep,
    who: Admin,
    email: Annotated[Line, Query(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")],
    format: Annotated[Literal["json", "zip"], Query(description="json ou zip")] = "json",
) -> Any:
    """Dossiers requested, their customer-visible timeline, mails sent and their attachments,
    uploads, ratings, training requests and appointments, evolution requests, sign-ins.
    `format=zip` adds the files. Audited (`personal_data.exported`)."""
    holders = _runtime(request).personal_data
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        if format == "zip":
            body: Any = await personal_data.archive(conn, email, holders)
        else:
            body = await personal_data.export(conn, email, holders)
    await audit.record(
        pool, who, "personal_data.exported", email.lower(), client_of(request), format=format
    )
    if format == "json":
        return body
    return Response(
        body,
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="donnees-personnelles.zip"'},
    )


class EraseIn(BaseModel):
    """The person to erase, named by address."""

    email: EmailStr = Field(max_length=320, description="Adresse de la personne")
    force: bool = Field(
        default=False,
        description="Effacer aussi ses dossiers encore ouverts (ils ne sont pas clos ; "
        "l'effacement forcé est consigné au journal d'audit)",
    )


class ErasedOut(BaseModel):
    email_sha256: str = Field(description="Ce que le journal d'audit garde de l'adresse")
    erased: dict[str, int] = Field(description="Nombre d'éléments effacés, par sorte")
    dossiers: int
    workflows_deleted: int = Field(description="Exécutions Temporal supprimées")
    stream_messages_deleted: int = Field(description="Messages NATS supprimés")
    forced_open: list[str] = Field(description="Dossiers ouverts effacés par `force`")
    pending: list[str] = Field(
        description="Ce qui reste à faire (temporal, nats) : terminé par la rétention du jour"
    )


@router.post(
    "/personal-data/erase",
    response_model=ErasedOut,
    responses=refusals(
        {
            409: "La personne a des dossiers ouverts (le contrat s'exécute encore)",
            422: "Adresse invalide",
        },
        forbidden="Réservé aux administrateurs",
    ),
    summary="Effacer les données personnelles d'une personne (droit à l'effacement)",
)
async def erase_personal_data(
    request: Request, body: EraseIn, pool: PoolDep, who: Admin, key: IdempotencyKey = None
) -> ErasedOut:
    """Identity, dossiers' texts, mails received and sent, files, notes, comments, sessions,
    tokens, links: replaced by « Personne effacée le JJ/MM/AAAA »; dates, states, kinds,
    softwares, organisations and timings stay for the statistics. Then the Temporal histories
    of the closed dossiers and their NATS messages are deleted. A dossier still open refuses
    (409) unless `force`. Again: every count 0. Audited (`personal_data.erased`, the address
    as a hash only)."""
    rt = _runtime(request)
    address = str(body.email).strip().lower()
    hashed = erasure.address_hash(address)
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        try:
            done = await erasure.erase_person(
                conn, address, rt.personal_data, force=body.force, now=now
            )
        except erasure.OpenDossiers as exc:
            raise Conflict(
                "dossiers_open",
                "Effacement refusé : la personne a des dossiers en cours ("
                + ", ".join(exc.references)
                + "). Le contrat s'exécute encore : effacez après leur clôture, ou forcez "
                "l'effacement.",
            ) from None
        await audit.record(
            conn,
            who,
            "personal_data.erased",
            f"sha256:{hashed}",
            client_of(request),
            counts=done.counts,
            dossiers=len(done.dossiers),
            force=body.force,
            forced_open=done.forced_open,
        )
    cleaned = await erasure.clean_up(
        pool, rt.temporal, rt.bus, done.dossiers, rt.personal_data, [address]
    )
    return ErasedOut(
        email_sha256=hashed,
        erased=done.counts,
        dossiers=len(done.dossiers),
        workflows_deleted=cleaned.workflows_deleted,
        stream_messages_deleted=cleaned.stream_messages_deleted,
        forced_open=done.forced_open,
        pending=cleaned.pending,
    )
