"""Dossier HTTP API: reading dossiers, searching the archive (R10)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from assistance.directory import Principal, Role
from assistance.errors import NotFound
from assistance.web import PoolDep, require
from services.dossier import repo
from services.dossier.models import DossierOut, DossierPage

router = APIRouter(prefix="/api/v1", tags=["dossiers"])

Anyone = Annotated[Principal, Depends(require(*Role))]


@router.get("/dossiers/{dossier_id}", response_model=DossierOut, summary="Lire un dossier")
async def read_dossier(dossier_id: uuid.UUID, pool: PoolDep, who: Anyone) -> DossierOut:
    """Staff see every dossier and its internal notes; a customer sees their organisation's
    dossiers and the entries meant for them."""
    found = await repo.get_dossier(pool, dossier_id, who)
    if found is None:
        raise NotFound("dossier_not_found", "Dossier introuvable.")
    return found


@router.get("/dossiers", response_model=DossierPage, summary="Lister et rechercher les dossiers")
async def search_dossiers(
    pool: PoolDep,
    who: Anyone,
    status: str | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Recherche plein texte")] = None,
    organisation: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DossierPage:
    items, total = await repo.list_dossiers(
        pool, who, status=status, q=q, organisation=organisation, limit=limit, offset=offset
    )
    return DossierPage(items=items, total=total)
