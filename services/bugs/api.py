"""Bugs HTTP API (R8): developers (also from CI, with a developer's token) list, claim,
reproduce, diagnose and signal the fix; technicians link dossiers to known bugs and search
the workaround base. Every write accepts `Idempotency-Key`."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query

from assistance.boundary import Offset
from assistance.errors import NotFound
from assistance.text import Line, SearchQuery
from assistance.web import (
    DeveloperOrAdmin,
    PoolDep,
    TechnicianDeveloperOrAdmin,
    TechnicianOrAdmin,
    refusals,
)
from services.bugs import repo, service
from services.bugs.domain import State
from services.bugs.models import (
    BugOut,
    BugPage,
    DiagnosisIn,
    FixIn,
    FixOut,
    LinkIn,
    NotReproducibleIn,
    ReproducedIn,
    WorkaroundPage,
)

router = APIRouter(prefix="/api/v1", tags=["bugs"])

REFUSALS = refusals(
    {
        404: "Bug introuvable",
        409: "Étape refusée : `error.message` dit pourquoi",
        422: "Corps invalide (`error.field`) ou clé d'idempotence réutilisée",
    }
)

Action = Callable[[asyncpg.Connection], Awaitable[dict[str, Any]]]


async def _write(pool: asyncpg.Pool, action: Action) -> dict[str, Any]:
    """One transaction per use case (`Idempotency-Key` is honoured in front of every write:
    assistance/idempotency.py)."""
    async with pool.acquire() as conn, conn.transaction():
        return await action(conn)


async def _step(
    pool: asyncpg.Pool, bug_id: uuid.UUID, step: Callable[..., Awaitable[Any]], *args: Any
) -> dict[str, Any]:
    """One step of a bug's life, in one transaction; answers the bug as it is after it."""

    async def act(conn: asyncpg.Connection) -> dict[str, Any]:
        await step(conn, bug_id, *args)
        return await _bug_now(conn, bug_id)

    return await _write(pool, act)


async def _bug_now(conn: asyncpg.Connection, bug_id: uuid.UUID) -> dict[str, Any]:
    bug = await repo.get_bug(conn, bug_id)
    if bug is None:
        raise NotFound("bug_not_found", "Bug introuvable.")
    return bug.model_dump(mode="json")


# --- reading ---------------------------------------------------------------------------------


@router.get("/bugs", response_model=BugPage, summary="Lister les bugs")
async def list_bugs(
    pool: PoolDep,
    who: TechnicianDeveloperOrAdmin,
    state: State | None = None,
    software: Annotated[Line | None, Query(max_length=100)] = None,
    mine: Annotated[bool, Query(description="Seulement les bugs que je suis")] = False,
    q: Annotated[SearchQuery | None, Query(description="Recherche plein texte")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> BugPage:
    """Oldest first: the order in which developers should take them."""
    items, total = await repo.list_bugs(
        pool,
        state=state.value if state else None,
        software=software,
        developer=who.user_id if mine else None,
        q=q,
        limit=limit,
        offset=offset,
    )
    return BugPage(items=items, total=total)


@router.get("/bugs/{bug_id}", response_model=BugOut, responses=REFUSALS, summary="Lire un bug")
async def read_bug(bug_id: uuid.UUID, pool: PoolDep, who: TechnicianDeveloperOrAdmin) -> BugOut:
    found = await repo.get_bug(pool, bug_id)
    if found is None:
        raise NotFound("bug_not_found", "Bug introuvable.")
    return found


@router.get(
    "/workarounds", response_model=WorkaroundPage, summary="Rechercher un contournement (R8)"
)
async def search_workarounds(
    pool: PoolDep,
    who: TechnicianDeveloperOrAdmin,
    software: Annotated[Line | None, Query(max_length=100)] = None,
    version: Annotated[Line | None, Query(max_length=50)] = None,
    q: Annotated[SearchQuery | None, Query(description="Mots (français)")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> WorkaroundPage:
    """The workarounds given to customers, best match first, each with its bug's state."""
    items, total = await repo.search_workarounds(
        pool, software=software, version=version, q=q, limit=limit, offset=offset
    )
    return WorkaroundPage(items=items, total=total)


# --- developers ------------------------------------------------------------------------------


@router.post(
    "/bugs/{bug_id}/claim", response_model=BugOut, responses=REFUSALS, summary="Prendre un bug"
)
async def claim(bug_id: uuid.UUID, pool: PoolDep, who: DeveloperOrAdmin) -> dict[str, Any]:
    return await _step(pool, bug_id, service.claim, who)


@router.post(
    "/bugs/{bug_id}/reproduced",
    response_model=BugOut,
    responses=REFUSALS,
    summary="Bug reproduit (étapes, environnement)",
)
async def reproduced(
    bug_id: uuid.UUID,
    body: ReproducedIn,
    pool: PoolDep,
    who: DeveloperOrAdmin,
) -> dict[str, Any]:
    return await _step(pool, bug_id, service.reproduced, body, who)


@router.post(
    "/bugs/{bug_id}/not-reproducible",
    response_model=BugOut,
    responses=REFUSALS,
    summary="Bug non reproduit : questions au client",
)
async def not_reproducible(
    bug_id: uuid.UUID,
    body: NotReproducibleIn,
    pool: PoolDep,
    who: DeveloperOrAdmin,
) -> dict[str, Any]:
    """The questions go to the technician and the customer of every linked dossier."""

    return await _step(pool, bug_id, service.not_reproducible, body, who)


@router.post(
    "/bugs/{bug_id}/diagnosis",
    response_model=BugOut,
    responses=REFUSALS,
    summary="Enregistrer le diagnostic",
)
async def diagnosis(
    bug_id: uuid.UUID,
    body: DiagnosisIn,
    pool: PoolDep,
    who: DeveloperOrAdmin,
) -> dict[str, Any]:
    return await _step(pool, bug_id, service.diagnosed, body, who)


@router.post(
    "/bugs/{bug_id}/fix-completed",
    response_model=FixOut,
    responses=REFUSALS,
    summary="Correction terminée (API publique, CI)",
)
async def fix_completed(
    bug_id: uuid.UUID,
    body: FixIn,
    pool: PoolDep,
    who: DeveloperOrAdmin,
) -> dict[str, Any]:
    """API.md: the fix is done in `version`; when that version (or a later one) is released,
    every affected customer is told which version carries it. The same call twice has one
    effect and gets the same answer."""

    async def act(conn: asyncpg.Connection) -> dict[str, Any]:
        fix = await service.complete_fix(conn, bug_id, body, who)
        return fix.model_dump(mode="json")

    return await _write(pool, act)


# --- technicians -----------------------------------------------------------------------------


@router.post(
    "/bugs/{bug_id}/dossiers",
    response_model=BugOut,
    responses=REFUSALS,
    summary="Rattacher un dossier à ce bug connu",
)
async def link_dossier(
    bug_id: uuid.UUID,
    body: LinkIn,
    pool: PoolDep,
    who: TechnicianOrAdmin,
) -> dict[str, Any]:
    """Instead of a duplicate: the dossier follows this bug (R8: after its workaround)."""

    return await _step(pool, bug_id, service.link_dossier, body, who)
