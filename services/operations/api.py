"""The « travail bloqué » API, for administrators (docs/decisions/0013, issue 11 item 6):
parked items, outbox rows failing, activities retrying, failed workflows, consumer lag; and
the two actions on a parked item, retry after repair and discard. Both writes are idempotent
in effect (a second call answers the item as the first left it) and accept
`Idempotency-Key` like every write."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request

from assistance.directory import Principal
from assistance.errors import Conflict, NotFound, Unavailable
from assistance.web import Admin, refusals
from services.operations import stuck
from services.operations.models import ParkedOut, StuckOut

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
    workflows = await stuck.failed_workflows(rt.temporal)
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
