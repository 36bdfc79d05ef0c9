"""The evolutions HTTP API (R9, R11, R12): backlog, reviews, decisions, releases, docs,
announcements. Reading docs and announcements needs no token (R13: the site works 24/7)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Path, Query, Request, Response

from assistance import audit, directory
from assistance.boundary import FIRST_YEAR, LAST_YEAR, Offset
from assistance.directory import Principal, Role
from assistance.errors import DomainError, Forbidden, NotFound
from assistance.web import (
    INVALID,
    Admin,
    AnyStaff,
    PoolDep,
    ProductManager,
    TechnicianProductManagerOrAdmin,
    client_of,
    refusals,
)
from services.evolutions import (
    backlog,
    decisions,
    domain,
    publications,
    releases,
    repo,
    reviews,
)
from services.evolutions.models import (
    AnnouncementsOut,
    DecisionIn,
    DecisionOut,
    DocPageOut,
    DocsIndexOut,
    EvolutionOut,
    EvolutionPage,
    GroupIn,
    ProductManagerOut,
    ReleaseIn,
    ReleaseOut,
    ReviewOut,
    ReviewScheduleOut,
)
from services.evolutions.settings import get_evolutions_settings

router = APIRouter(prefix="/api/v1", tags=["evolutions"])

CODE = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
Software = Annotated[
    str, Path(min_length=1, max_length=100, pattern=CODE, description="Code du logiciel")
]
SoftwareFilter = Annotated[str | None, Query(max_length=100, pattern=CODE)]
ERRORS = refusals(
    {404: "Introuvable", 409: "Déjà décidé autrement", 422: INVALID},
    unauthenticated="Jeton invalide ou absent",
    forbidden="Rôle non autorisé, ou chef de produit d'un autre logiciel",
)


# --- backlog (R9) -------------------------------------------------------------------------------


@router.get("/evolutions", response_model=EvolutionPage, summary="Le carnet des évolutions")
async def list_evolutions(
    pool: PoolDep,
    who: AnyStaff,
    software: SoftwareFilter = None,
    status: Annotated[
        Literal["open", "merged", "accepted", "rejected"] | None, Query(description="État")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> EvolutionPage:
    async with pool.acquire() as conn:
        items, total = await backlog.list_evolutions(conn, software, status, limit, offset)
    return EvolutionPage(items=items, total=total)


@router.get(
    "/evolutions/{evolution_id}",
    response_model=EvolutionOut,
    responses=ERRORS,
    summary="Une évolution et tous ses demandeurs",
)
async def read_evolution(evolution_id: uuid.UUID, pool: PoolDep, who: AnyStaff) -> EvolutionOut:
    """The id of an evolution or of one of its requests (the hand-over answers both)."""
    async with pool.acquire() as conn:
        return await backlog.get_evolution(conn, await backlog.find_id(conn, evolution_id))


@router.post(
    "/evolutions/{evolution_id}/group",
    response_model=EvolutionOut,
    responses=ERRORS,
    summary="Regrouper des demandes semblables",
)
async def group_evolutions(
    evolution_id: uuid.UUID, body: GroupIn, pool: PoolDep, who: TechnicianProductManagerOrAdmin
) -> EvolutionOut:
    """R9: the listed evolutions join this one, so the review sees one item with every
    requesting client. Grouping again the same ones answers the same."""
    async with pool.acquire() as conn, conn.transaction():
        target = await backlog.find_id(conn, evolution_id)
        await _may_group(conn, target, who)
        others = [await _evolution_in_body(conn, i) for i in body.evolutions]
        return await backlog.group(conn, target, others, body.title, body.summary)


async def _may_group(conn: asyncpg.Connection, target: uuid.UUID, who: Principal) -> None:
    """Issue 13: a product manager groups only the evolutions of a software they manage
    (technicians and admins group any)."""
    if who.role is not Role.product_manager:
        return
    software = await conn.fetchval(
        "SELECT software FROM evolutions.evolutions WHERE id = $1", target
    )
    if not await repo.is_product_manager(conn, software, who.user_id):
        raise Forbidden(
            "not_product_manager",
            f"Seul un chef de produit de {software} peut regrouper ses évolutions.",
        )


async def _evolution_in_body(conn: asyncpg.Connection, some_id: uuid.UUID) -> uuid.UUID:
    try:
        return await backlog.find_id(conn, some_id)
    except NotFound as missing:
        raise DomainError(
            "unknown_evolution", f"Évolution inconnue : {some_id}.", "evolutions"
        ) from missing


@router.post(
    "/evolutions/{evolution_id}/decision",
    response_model=DecisionOut,
    responses=ERRORS,
    summary="Décision du chef de produit",
)
async def decide(
    evolution_id: uuid.UUID, body: DecisionIn, request: Request, pool: PoolDep, who: ProductManager
) -> DecisionOut:
    """R9, by a product manager of the evolution's software: `accepted` with its
    specification (Markdown), handed to the IT project managers; or `rejected` with a reason.
    Each requester is told in French and their dossier closes. The same decision again
    answers the same; a different one after it is a 409."""
    async with pool.acquire() as conn, conn.transaction():
        return await decisions.decide(conn, evolution_id, who, body, request.app.state.settings)


# --- product managers of a software -------------------------------------------------------------


@router.get(
    "/softwares/{software}/product-managers",
    response_model=list[ProductManagerOut],
    responses=ERRORS,
    summary="Les chefs de produit d'un logiciel",
)
async def list_product_managers(
    software: Software, pool: PoolDep, who: AnyStaff
) -> list[ProductManagerOut]:
    async with pool.acquire() as conn:
        await releases.require_software(conn, software)
        return [
            ProductManagerOut(
                software=software, user_id=u, email=await directory.user_email(conn, u)
            )
            for u in await repo.product_managers(conn, software)
        ]


@router.put(
    "/softwares/{software}/product-managers/{user_id}",
    response_model=ProductManagerOut,
    responses=ERRORS,
    summary="Nommer un chef de produit d'un logiciel",
)
async def assign_product_manager(
    request: Request, software: Software, user_id: uuid.UUID, pool: PoolDep, who: Admin
) -> ProductManagerOut:
    async with pool.acquire() as conn, conn.transaction():
        await releases.require_software(conn, software)
        email = await directory.user_email(conn, user_id)
        if email is None:
            raise NotFound("user_not_found", "Utilisateur inconnu.", "user_id")
        await repo.assign_product_manager(conn, software, user_id)
        await audit.record(
            conn,
            who,
            "permission.product_manager.granted",
            str(user_id),
            client_of(request),
            software=software,
        )
    return ProductManagerOut(software=software, user_id=user_id, email=email)


@router.delete(
    "/softwares/{software}/product-managers/{user_id}",
    status_code=204,
    responses=ERRORS,
    summary="Retirer un chef de produit d'un logiciel",
)
async def unassign_product_manager(
    request: Request, software: Software, user_id: uuid.UUID, pool: PoolDep, who: Admin
) -> Response:
    if not await repo.unassign_product_manager(pool, software, user_id):
        raise NotFound("not_product_manager", "Cet utilisateur n'est pas chef de ce produit.")
    await audit.record(
        pool,
        who,
        "permission.product_manager.revoked",
        str(user_id),
        client_of(request),
        software=software,
    )
    return Response(status_code=204)


# --- weekly reviews (R9) ------------------------------------------------------------------------


@router.get("/reviews", response_model=list[ReviewOut], summary="Les revues hebdomadaires")
async def list_reviews(
    pool: PoolDep,
    who: AnyStaff,
    software: SoftwareFilter = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[ReviewOut]:
    return await reviews.list_reviews(pool, software, limit)


@router.get(
    "/reviews/{review_id}",
    response_model=ReviewOut,
    responses=ERRORS,
    summary="L'ordre du jour d'une revue",
)
async def read_review(review_id: uuid.UUID, pool: PoolDep, who: AnyStaff) -> ReviewOut:
    return await reviews.get_review(pool, review_id)


@router.get(
    "/softwares/{software}/review-schedule",
    response_model=ReviewScheduleOut,
    responses=ERRORS,
    summary="Les prochaines revues d'un logiciel",
)
async def review_schedule(software: Software, pool: PoolDep, who: AnyStaff) -> ReviewScheduleOut:
    await releases.require_software(pool, software)
    settings = get_evolutions_settings()
    slot = settings.review_slot(software)
    return ReviewScheduleOut(
        software=software,
        review_at=settings.review_at_by_software.get(software, settings.review_at),
        timezone=settings.review_timezone,
        next_reviews=slot.next_times(datetime.now(UTC), settings.review_timezone, 4),
    )


# --- releases (R11, R12) ------------------------------------------------------------------------


@router.post(
    "/softwares/{software}/releases",
    response_model=ReleaseOut,
    status_code=201,
    responses={**ERRORS, 200: {"description": "La même déclaration, déjà enregistrée"}},
    summary="Déclarer une version livrée",
)
async def declare_release(
    software: Software,
    body: ReleaseIn,
    request: Request,
    response: Response,
    pool: PoolDep,
    who: ProductManager,
) -> ReleaseOut:
    """By a product manager of the software (or their CI with their token): the version joins
    the catalogue, its documentation is published, the evolutions it carries are announced and
    their requesters told. The same declaration again answers 200 with the same release."""
    async with pool.acquire() as conn, conn.transaction():
        answer, created = await releases.declare(
            conn, software, who, body, request.app.state.settings
        )
    if not created:
        response.status_code = 200
    return answer


@router.get(
    "/softwares/{software}/releases",
    response_model=list[ReleaseOut],
    responses=ERRORS,
    summary="Les versions livrées d'un logiciel",
)
async def list_releases(software: Software, pool: PoolDep) -> list[ReleaseOut]:
    async with pool.acquire() as conn:
        return await releases.list_releases(conn, software)


# --- announcements (R12) and documentation (R11): anyone ----------------------------------------


@router.get(
    "/announcements",
    response_model=AnnouncementsOut,
    responses=ERRORS,
    tags=["announcements"],
    summary="Les évolutions de la semaine, par logiciel",
)
async def announcements(
    pool: PoolDep,
    software: SoftwareFilter = None,
    week: Annotated[
        str | None, Query(pattern=r"^[0-9]{4}-W[0-9]{2}$", description="Semaine ISO")
    ] = None,
    weeks: Annotated[int | None, Query(ge=1, le=520)] = None,
) -> AnnouncementsOut:
    """R12 (engagement 3): per software and ISO week (Europe/Paris), the versions released
    and the functional evolutions they brought; newest first. Also as Atom:
    `/feeds/{software}.atom`."""
    settings = get_evolutions_settings()
    if week is not None:
        try:
            start = domain.week_start(week)
        except ValueError as invalid:
            raise DomainError("invalid_week", "Semaine ISO inexistante.", "week") from invalid
        if not FIRST_YEAR <= start.year <= LAST_YEAR:  # 9999-W52 would overflow (issue 11)
            raise DomainError(
                "invalid_week",
                f"Semaine hors des limites (années {FIRST_YEAR} à {LAST_YEAR}).",
                "week",
            )
    async with pool.acquire() as conn:
        items = await publications.announcements(
            conn,
            software,
            week,
            weeks or settings.announcement_weeks,
            datetime.now(UTC),
            settings.review_timezone,
        )
    return AnnouncementsOut(software=software, items=items)


@router.get(
    "/docs/{software}",
    response_model=DocsIndexOut,
    responses=ERRORS,
    tags=["documentation"],
    summary="La documentation d'un logiciel, par version",
)
async def docs_index(software: Software, pool: PoolDep) -> DocsIndexOut:
    """R11: every released version with its pages, newest first; `latest` names the last."""
    async with pool.acquire() as conn:
        return await publications.docs_index(conn, software)


@router.get(
    "/docs/{software}/{version}/{slug}",
    response_model=DocPageOut,
    responses=ERRORS,
    tags=["documentation"],
    summary="Une page de documentation d'une version (ou de `latest`)",
)
async def doc_page(
    software: Software,
    version: Annotated[str, Path(min_length=1, max_length=64, pattern=domain.VERSION.pattern)],
    slug: Annotated[str, Path(min_length=1, max_length=100, pattern=domain.SLUG.pattern)],
    pool: PoolDep,
) -> DocPageOut:
    """R11: the page's Markdown and its sanitised HTML; `latest` is the last released
    version, and the answer says which version it is."""
    async with pool.acquire() as conn:
        return await publications.doc_page(conn, software, version, slug)
