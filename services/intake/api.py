"""Intake HTTP API: deposits from the site (R1, R13) and phone calls logged by technicians."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
from fastapi import APIRouter, Request

from assistance import directory
from assistance.directory import Principal, Role
from assistance.errors import DomainError, Forbidden
from assistance.web import INVALID, PoolDep, PrincipalDep, TechnicianOrAdmin, refusals
from services.intake import domain, repo
from services.intake.mail.api import router as mail_router
from services.intake.models import CallIn, Channel, DepositIn, DepositOut

router = APIRouter(prefix="/api/v1", tags=["intake"])
SOFTWARES = directory.SoftwareCatalogue()

ERRORS = refusals({422: INVALID})


async def _organisation(
    conn: asyncpg.Connection, body: DepositIn, who: Principal
) -> uuid.UUID | None:
    if who.role is Role.customer:
        return who.organisation_id  # a customer deposits for their own organisation
    if body.organisation:
        try:
            org = uuid.UUID(body.organisation)
        except ValueError:
            org = None
        if org is None or not await directory.organisation_exists(conn, org):
            raise DomainError("unknown_organisation", "Organisation inconnue.", "organisation")
        return org
    return await directory.organisation_for_email(conn, str(body.requester.email))


async def _accept(
    request: Request, pool: asyncpg.Pool, body: DepositIn, who: Principal, channel: Channel
) -> DepositOut:
    """One transaction: the request and its outbox rows (`Idempotency-Key` is honoured in front
    of every write: assistance/idempotency.py)."""
    settings = request.app.state.settings
    async with pool.acquire() as conn, conn.transaction():
        if not await SOFTWARES.knows(conn, body.software):
            raise DomainError(
                "unknown_software",
                f"Logiciel inconnu : {body.software!r}.",
                "software",
            )
        received_at = datetime.now(UTC)
        is_call = isinstance(body, CallIn)
        return await repo.record_request(
            conn,
            body,
            channel=channel,
            received_at=received_at,
            first_response_due=domain.first_response_due(
                request.app.state.calendar, received_at, settings.first_response_hours
            ),
            organisation_id=await _organisation(conn, body, who),
            deposited_by=who.user_id,
            technician_id=who.user_id if is_call else None,
            caller_phone=body.caller_phone if isinstance(body, CallIn) else None,
            extra={
                "technician_name": who.name if is_call else None,
                "policy": settings.dossier_policy(),
            },
        )


@router.post(
    "/requests",
    status_code=201,
    response_model=DepositOut,
    responses=ERRORS,
    summary="Déposer une demande d'assistance",
)
async def deposit(
    request: Request,
    body: DepositIn,
    pool: PoolDep,
    who: PrincipalDep,
) -> DepositOut:
    """R1/R13: open to anyone, 24/7. Answers 201 only once the request is committed;
    `first_response_due` is the R3 commitment (assistance/commitment.py: FIRST_RESPONSE_HOURS
    business hours, Europe/Paris)."""
    return await _accept(request, pool, body, who, "web")


@router.post(
    "/calls",
    status_code=201,
    response_model=DepositOut,
    responses=ERRORS,
    summary="Enregistrer un appel téléphonique",
)
async def log_call(
    request: Request,
    body: CallIn,
    pool: PoolDep,
    who: TechnicianOrAdmin,
) -> DepositOut:
    """R1: a technician logs a phone request; the call itself is the first response."""
    if who.user_id is None:
        raise Forbidden("forbidden", "Réservé aux techniciens.")
    return await _accept(request, pool, body, who, "phone")


router.include_router(mail_router)  # /api/v1/mail/…: ledger, quarantine, attachments
