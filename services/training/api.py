"""Training HTTP API (R7): trainers' profiles and absences, bookings, outcomes, the brief."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from assistance import directory
from assistance.boundary import Offset
from assistance.directory import Principal
from assistance.errors import Conflict, DomainError, Forbidden, NotFound
from assistance.text import Line
from assistance.web import INVALID, Trainer, TrainerOrAdmin, TrainerTechnicianOrAdmin, refusals
from services.training import appointments, booking, domain, repo, views
from services.training.context import Context
from services.training.models import (
    AbsenceIn,
    AbsenceOut,
    AppointmentOut,
    AppointmentPage,
    AppointmentStatus,
    CancelIn,
    HeldIn,
    ManualBookingIn,
    MissedIn,
    RequestStatus,
    RescheduleIn,
    SlotOut,
    TrainerOut,
    TrainerProfileIn,
    TrainingRequestOut,
)

router = APIRouter(prefix="/api/v1", tags=["training"])

ERRORS = refusals(
    {404: "Introuvable", 409: "Conflit : créneau pris, rendez-vous déjà clos…", 422: INVALID}
)


def context(request: Request) -> Context:
    state = request.app.state
    return Context(state.pool, state.settings, state.calendar)


Ctx = Annotated[Context, Depends(context)]


async def _appointment(ctx: Context, appointment_id: uuid.UUID) -> AppointmentOut:
    found = await repo.get_appointment(ctx.pool, appointment_id)
    if found is None:
        raise NotFound("appointment_not_found", "Rendez-vous introuvable.")
    return views.appointment_out(found)


# --- trainers and absences -----------------------------------------------------------------


async def _known_softwares(ctx: Context, codes: list[str]) -> None:
    unknown = sorted(set(codes) - set(await directory.software_codes(ctx.pool)))
    if unknown:
        raise DomainError(
            "unknown_software", f"Logiciel inconnu : {', '.join(unknown)}.", "softwares"
        )


@router.put(
    "/training/trainers/me",
    response_model=TrainerOut,
    responses=ERRORS,
    summary="Déclarer son profil de formateur (logiciels enseignés)",
)
async def save_my_profile(body: TrainerProfileIn, ctx: Ctx, who: Trainer) -> TrainerOut:
    """A trainer says which softwares they teach; they are then offered bookings (R7).
    Working hours are the centre's (business calendar); absences are declared apart."""
    assert who.user_id is not None
    await _known_softwares(ctx, body.softwares)
    row = await repo.save_trainer(
        ctx.pool, who.user_id, who.name, who.email, body.softwares, body.active
    )
    return views.trainer_out(row)


@router.put(
    "/training/trainers/{trainer_id}",
    response_model=TrainerOut,
    responses=ERRORS,
    summary="Modifier le profil d'un formateur (responsable formation, admin)",
)
async def update_profile(
    trainer_id: uuid.UUID, body: TrainerProfileIn, ctx: Ctx, who: TrainerOrAdmin
) -> TrainerOut:
    if not (booking.is_lead(ctx, who) or who.user_id == trainer_id):
        raise Forbidden("not_lead", "Réservé au responsable formation et aux administrateurs.")
    await _known_softwares(ctx, body.softwares)
    row = await repo.update_trainer(ctx.pool, trainer_id, body.softwares, body.active)
    if row is None:
        raise NotFound("trainer_not_found", "Formateur inconnu : il déclare d'abord son profil.")
    return views.trainer_out(row)


@router.get(
    "/training/trainers",
    response_model=list[TrainerOut],
    responses=ERRORS,
    summary="Lister les formateurs",
)
async def list_trainers(
    ctx: Ctx,
    who: TrainerTechnicianOrAdmin,
    software: Annotated[Line | None, Query(max_length=100)] = None,
) -> list[TrainerOut]:
    return [views.trainer_out(r) for r in await repo.list_trainers(ctx.pool, software)]


def _may_manage_trainer(ctx: Context, who: Principal, trainer_id: uuid.UUID) -> None:
    if not (booking.is_lead(ctx, who) or who.user_id == trainer_id):
        raise Forbidden("not_yours", "Vous ne gérez que vos propres absences.")


@router.get(
    "/training/trainers/{trainer_id}/absences",
    response_model=list[AbsenceOut],
    responses=ERRORS,
    summary="Lister les absences d'un formateur",
)
async def list_absences(
    trainer_id: uuid.UUID, ctx: Ctx, who: TrainerTechnicianOrAdmin
) -> list[AbsenceOut]:
    return [views.absence_out(r) for r in await repo.list_absences(ctx.pool, trainer_id)]


@router.post(
    "/training/trainers/{trainer_id}/absences",
    status_code=201,
    response_model=AbsenceOut,
    responses=ERRORS,
    summary="Déclarer une absence",
)
async def add_absence(
    trainer_id: uuid.UUID, body: AbsenceIn, ctx: Ctx, who: TrainerOrAdmin
) -> AbsenceOut:
    """The trainer is not booked during an absence. Refused (409) while appointments are
    planned in it: reschedule or cancel them first."""
    _may_manage_trainer(ctx, who, trainer_id)
    async with ctx.pool.acquire() as conn, conn.transaction():
        if await repo.get_trainer(conn, trainer_id, lock=True) is None:
            raise NotFound("trainer_not_found", "Formateur inconnu.")
        planned = await repo.booked_during(conn, trainer_id, body.starts_at, body.ends_at)
        if planned:
            refs = ", ".join(a["reference"] for a in planned)
            raise Conflict(
                "appointments_planned",
                f"Des rendez-vous sont prévus pendant cette absence ({refs}) : "
                "reprogrammez-les d'abord.",
            )
        row = await repo.add_absence(conn, trainer_id, body.starts_at, body.ends_at, body.reason)
    return views.absence_out(row)


@router.delete(
    "/training/trainers/{trainer_id}/absences/{absence_id}",
    status_code=204,
    responses=ERRORS,
    summary="Retirer une absence",
)
async def delete_absence(
    trainer_id: uuid.UUID, absence_id: uuid.UUID, ctx: Ctx, who: TrainerOrAdmin
) -> Response:
    _may_manage_trainer(ctx, who, trainer_id)
    if not await repo.delete_absence(ctx.pool, trainer_id, absence_id):
        raise NotFound("absence_not_found", "Absence introuvable.")
    return Response(status_code=204)


@router.get(
    "/training/slots",
    response_model=list[SlotOut],
    responses=ERRORS,
    summary="Premiers créneaux libres pour un logiciel (aujourd'hui ou le jour ouvré suivant)",
)
async def free_slots(
    ctx: Ctx,
    who: TrainerTechnicianOrAdmin,
    software: Annotated[Line, Query(min_length=1, max_length=100)],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[SlotOut]:
    """R7 window first; when it is full, the alternatives the training lead would get."""
    now = ctx.clock()
    async with ctx.pool.acquire() as conn, conn.transaction(readonly=True):
        trainers = await conn.fetch(
            "SELECT id, name FROM training.trainers WHERE active AND $1 = ANY(softwares) "
            "ORDER BY name, id",
            software,
        )
        agendas = await repo.agendas(
            conn, list(trainers), now, domain.window_end(ctx.calendar, now, ctx.policy)
        )
    plan = domain.plan(ctx.calendar, agendas, now, ctx.policy)
    return [views.slot_out(s) for s in (plan.window or plan.alternatives)[:limit]]


# --- training requests (hand-overs) ---------------------------------------------------------


@router.get(
    "/training/requests",
    response_model=list[TrainingRequestOut],
    responses=ERRORS,
    summary="Demandes de formation reçues des dossiers",
)
async def list_requests(
    ctx: Ctx,
    who: TrainerTechnicianOrAdmin,
    status: RequestStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[TrainingRequestOut]:
    """`status=unavailable`: those for which no slot existed; the lead books them by hand."""
    return [views.request_out(r) for r in await repo.list_requests(ctx.pool, status, limit)]


@router.get(
    "/training/requests/{request_id}",
    response_model=TrainingRequestOut,
    responses=ERRORS,
    summary="Lire une demande de formation",
)
async def read_request(
    request_id: uuid.UUID, ctx: Ctx, who: TrainerTechnicianOrAdmin
) -> TrainingRequestOut:
    found = await repo.get_request(ctx.pool, request_id)
    if found is None:
        raise NotFound("request_not_found", "Demande de formation introuvable.")
    return views.request_out(found)


@router.post(
    "/training/requests/{request_id}/appointment",
    status_code=201,
    response_model=AppointmentOut,
    responses=ERRORS,
    summary="Réserver un créneau à la main (responsable formation)",
)
async def book_by_hand(
    request_id: uuid.UUID,
    body: ManualBookingIn,
    ctx: Ctx,
    who: TrainerOrAdmin,
) -> AppointmentOut:
    """After a no-slot alert (or a cancellation): book one of the alternatives, or any slot
    within opening hours. The customer and the trainer get the invitation."""
    appointment_id = await booking.book_by_hand(ctx, request_id, body, who)
    return await _appointment(ctx, appointment_id)


# --- appointments ---------------------------------------------------------------------------


@router.get(
    "/training/appointments",
    response_model=AppointmentPage,
    responses=ERRORS,
    summary="Lister les rendez-vous de formation",
)
async def list_appointments(
    ctx: Ctx,
    who: TrainerTechnicianOrAdmin,
    trainer: uuid.UUID | None = None,
    mine: bool = False,
    status: AppointmentStatus | None = None,
    dossier: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> AppointmentPage:
    """`mine=true`: the caller's own appointments (a trainer's agenda)."""
    items, total = await repo.list_appointments(
        ctx.pool,
        trainer_id=who.user_id if mine else trainer,
        status=status,
        dossier_id=dossier,
        limit=limit,
        offset=offset,
    )
    return AppointmentPage(items=[views.appointment_out(a) for a in items], total=total)


@router.get(
    "/training/appointments/{appointment_id}",
    response_model=AppointmentOut,
    responses=ERRORS,
    summary="Lire un rendez-vous et sa fiche de préparation",
)
async def read_appointment(
    appointment_id: uuid.UUID, ctx: Ctx, who: TrainerTechnicianOrAdmin
) -> AppointmentOut:
    """Engagement 4: `brief` holds the client's context, need, software and history."""
    return await _appointment(ctx, appointment_id)


@router.post(
    "/training/appointments/{appointment_id}/reschedule",
    response_model=AppointmentOut,
    responses=ERRORS,
    summary="Déplacer un rendez-vous (mise à jour de l'invitation)",
)
async def reschedule(
    appointment_id: uuid.UUID,
    body: RescheduleIn,
    ctx: Ctx,
    who: TrainerOrAdmin,
) -> AppointmentOut:
    """A new time (and maybe trainer) within opening hours; the customer and the trainer get
    the updated invitation (same UID, SEQUENCE + 1)."""
    await appointments.reschedule(ctx, appointment_id, body, who)
    return await _appointment(ctx, appointment_id)


@router.post(
    "/training/appointments/{appointment_id}/cancel",
    response_model=AppointmentOut,
    responses=ERRORS,
    summary="Annuler un rendez-vous",
)
async def cancel(
    appointment_id: uuid.UUID,
    body: CancelIn,
    ctx: Ctx,
    who: TrainerOrAdmin,
) -> AppointmentOut:
    """The invitation is withdrawn (METHOD:CANCEL); the lead may book the request again."""
    await appointments.cancel(ctx, appointment_id, body, who)
    return await _appointment(ctx, appointment_id)


@router.post(
    "/training/appointments/{appointment_id}/held",
    response_model=AppointmentOut,
    responses=ERRORS,
    summary="Indiquer que la formation a eu lieu (avec notes)",
)
async def mark_held(
    appointment_id: uuid.UUID,
    body: HeldIn,
    ctx: Ctx,
    who: TrainerOrAdmin,
) -> AppointmentOut:
    """The dossier's workflow then proposes the resolution to the customer (R7 → R10)."""
    await appointments.mark_held(ctx, appointment_id, body, who)
    return await _appointment(ctx, appointment_id)


@router.post(
    "/training/appointments/{appointment_id}/missed",
    response_model=AppointmentOut,
    responses=ERRORS,
    summary="Indiquer que le client ne s'est pas présenté",
)
async def mark_missed(
    appointment_id: uuid.UUID,
    body: MissedIn,
    ctx: Ctx,
    who: TrainerOrAdmin,
) -> AppointmentOut:
    """Only once the appointment has started; the dossier's workflow asks for a new booking."""
    await appointments.mark_missed(ctx, appointment_id, body, who)
    return await _appointment(ctx, appointment_id)
