"""Booking (R7): the hand-over from a dossier becomes an appointment, or an alert.

One transaction per hand-over: the request, the appointment, the invitations and the event are
committed together (the outbox sends the mails and the event afterwards), and only then does
the workflow get its answer. Idempotent on (dossier_id, attempt): a retried hand-over gets the
first answer back. Double booking is impossible: PostgreSQL's exclusion constraint refuses a
second appointment overlapping a trainer's, and the next slot is tried instead.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from assistance import directory
from assistance.directory import Principal, Role
from assistance.errors import Conflict, DomainError, Forbidden, NotFound
from assistance.french import local as in_paris
from services.training import brief, domain, events, notify, repo
from services.training.context import Context
from services.training.domain import Slot
from services.training.models import Brief, HandOverIn, ManualBookingIn

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRIES = 5


async def in_transaction(ctx: Context, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run `work` in one transaction, again if PostgreSQL broke a deadlock."""
    for attempt in range(RETRIES):
        try:
            async with ctx.pool.acquire() as conn, conn.transaction():
                return await work(conn)
        except asyncpg.DeadlockDetectedError:
            if attempt == RETRIES - 1:
                raise
            log.info("deadlock broken; retrying the training transaction")
    raise AssertionError("unreachable")


async def open_request(ctx: Context, order: HandOverIn) -> dict[str, Any]:
    """The answer to `commands.training.open` (docs/contracts.md, section 1)."""

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        request = await repo.claim_request(conn, order)
        if request is None:  # the same hand-over again: the same answer (idempotent)
            answer = await repo.answer_of(conn, order.dossier_id, order.attempt)
            assert answer is not None
            return answer
        the_brief = await build_brief(ctx, conn, order, request["id"])
        trainers = await repo.teaching(conn, order.software)
        appointment_id = await _book_first_free(ctx, conn, request, trainers, the_brief)
        if appointment_id is not None:
            appt = await _announce(conn, appointment_id)
            answer = {"ok": True, "status": "booked", **_summary(appt)}
            await repo.finish_request(conn, request["id"], "booked", answer)
            return answer
        return await _escalate(ctx, conn, request, trainers, the_brief)

    return await in_transaction(ctx, work)


async def build_brief(
    ctx: Context, conn: asyncpg.Connection, order: HandOverIn, request_id: uuid.UUID
) -> Brief:
    """Engagement 4: the client's context and history, gathered at booking time."""
    limit = ctx.options.history_limit
    organisation = (
        await directory.get_organisation(conn, order.organisation_id)
        if order.organisation_id
        else None
    )
    dossiers = await repo.previous_dossiers(
        conn, order.organisation_id, order.requester_email, order.dossier_id, limit
    )
    trainings = await repo.previous_trainings(
        conn, order.organisation_id, order.requester_email, request_id, limit
    )
    names = {str(s["code"]): str(s["name"]) for s in await directory.list_softwares(conn)}
    return brief.build(order, organisation, dossiers, trainings, names)


async def _book_first_free(
    ctx: Context,
    conn: asyncpg.Connection,
    request: asyncpg.Record,
    trainers: list[asyncpg.Record],
    the_brief: Brief,
) -> uuid.UUID | None:
    """R7: the earliest free slot today or the next business day; under concurrency the
    exclusion constraint refuses a taken slot and the next one is tried."""
    now = ctx.clock()
    agendas = await repo.agendas(
        conn, trainers, now, domain.window_end(ctx.calendar, now, ctx.policy)
    )
    link = notify.room_link(ctx.settings.screen_share_url)
    for slot in domain.plan(ctx.calendar, agendas, now, ctx.policy).window:
        appointment_id = await try_insert(conn, request, slot, link, the_brief)
        if appointment_id is not None:
            return appointment_id
    return None


async def try_insert(
    conn: asyncpg.Connection, request: asyncpg.Record, slot: Slot, link: str, the_brief: Brief
) -> uuid.UUID | None:
    """Insert in a savepoint; None when the trainer was taken meanwhile (R7, no overlap)."""
    try:
        async with conn.transaction():
            return await repo.insert_appointment(
                conn, request=request, slot=slot, link=link, brief=the_brief.model_dump(mode="json")
            )
    except asyncpg.ExclusionViolationError:
        return None


async def _announce(conn: asyncpg.Connection, appointment_id: uuid.UUID) -> dict[str, Any]:
    """Invite the customer and the trainer, publish `booked`; returns the appointment."""
    appt = await repo.get_appointment(conn, appointment_id)
    assert appt is not None
    await notify.invite(conn, notify.invitation_of(appt, "booked"))
    await events.publish_appointment(conn, events.BOOKED, appt)
    return appt


async def _escalate(
    ctx: Context,
    conn: asyncpg.Connection,
    request: asyncpg.Record,
    trainers: list[asyncpg.Record],
    the_brief: Brief,
) -> dict[str, Any]:
    """R7, never a silent slip: alert the lead with the best alternatives, tell the dossier."""
    now = ctx.clock()
    agendas = await repo.agendas(
        conn, trainers, now, domain.window_end(ctx.calendar, now, ctx.policy)
    )
    next_day = domain.booking_days(ctx.calendar, now)[1]
    options = domain.alternatives(
        ctx.calendar, agendas, next_day, ctx.policy, now + ctx.policy.notice
    )
    reason: notify.NoSlotReason = "no_slot" if trainers else "no_trainer"
    organisation = the_brief.organisation["name"] if the_brief.organisation else None
    await notify.alert_lead(conn, ctx.settings, request, options, reason, organisation)
    data = {
        "dossier_id": str(request["dossier_id"]),
        "request_id": str(request["id"]),
        "reference": request["reference"],
        "software": request["software"],
        "reason": reason,
        "alternatives": [s.as_json() for s in options],
        "lead": ctx.lead,
    }
    await events.publish_unavailable(conn, data)
    answer = {"ok": True, "status": "unavailable", **data}
    await repo.finish_request(conn, request["id"], "unavailable", answer, options)
    return answer


def _summary(appt: dict[str, Any]) -> dict[str, Any]:
    return {
        "request_id": str(appt["request_id"]),
        "appointment_id": str(appt["id"]),
        "dossier_id": str(appt["dossier_id"]),
        "starts_at": in_paris(appt["starts_at"]).isoformat(),
        "ends_at": in_paris(appt["ends_at"]).isoformat(),
        "trainer_id": str(appt["trainer_id"]),
        "trainer_name": appt["trainer_name"],
        "link": appt["link"],
    }


# --- the training lead books by hand (after an alert, or a cancellation) --------------------


def is_lead(ctx: Context, who: Principal) -> bool:
    return who.role is Role.admin or (
        who.role is Role.trainer and who.email.lower() == ctx.lead.lower()
    )


async def book_by_hand(
    ctx: Context, request_id: uuid.UUID, body: ManualBookingIn, who: Principal
) -> uuid.UUID:
    """The lead (or a trainer for themself) books a chosen slot for a waiting request."""
    if not (is_lead(ctx, who) or who.user_id == body.trainer_id):
        raise Forbidden(
            "not_lead", "Seul le responsable formation réserve pour un autre formateur."
        )

    async def work(conn: asyncpg.Connection) -> uuid.UUID:
        request = await repo.get_request(conn, request_id, lock=True)
        if request is None:
            raise NotFound("request_not_found", "Demande de formation introuvable.")
        if request["appointment_id"] is not None:
            raise Conflict("already_booked", "Cette demande a déjà un rendez-vous.")
        trainer = await usable_trainer(conn, body.trainer_id, request["software"])
        slot = Slot(
            trainer["id"], trainer["name"], body.starts_at, body.starts_at + ctx.policy.duration
        )
        await check_slot(ctx, conn, slot)
        the_brief = await build_brief(ctx, conn, repo.order_of(request), request["id"])
        link = notify.room_link(ctx.settings.screen_share_url)
        appointment_id = await try_insert(conn, request, slot, link, the_brief)
        if appointment_id is None:
            raise Conflict("slot_taken", "Ce formateur a déjà un rendez-vous sur ce créneau.")
        await _announce(conn, appointment_id)
        await repo.finish_request(conn, request["id"], "booked")
        return appointment_id

    return await in_transaction(ctx, work)


async def usable_trainer(
    conn: asyncpg.Connection, trainer_id: uuid.UUID, software: str
) -> asyncpg.Record:
    """An active trainer who teaches `software`, locked like a booking locks its trainers
    (repo.teaching): against a concurrent absence or booking of the same trainer."""
    trainer = await conn.fetchrow(
        "SELECT id, name, email, softwares, active FROM training.trainers WHERE id = $1"
        " FOR NO KEY UPDATE",
        trainer_id,
    )
    if trainer is None:
        raise DomainError("unknown_trainer", "Formateur inconnu.", "trainer_id")
    if not trainer["active"] or software not in trainer["softwares"]:
        raise DomainError(
            "trainer_cannot_teach",
            f"{trainer['name']} n'enseigne pas {software} (ou n'est plus actif).",
            "trainer_id",
        )
    return trainer


async def check_slot(ctx: Context, conn: asyncpg.Connection, slot: Slot) -> None:
    """A chosen slot: future, within opening hours, the trainer not absent then."""
    domain.check_chosen_slot(ctx.calendar, slot.starts_at, slot.ends_at, ctx.clock())
    if await repo.absent_during(conn, slot.trainer_id, slot.starts_at, slot.ends_at):
        raise DomainError(
            "trainer_absent", f"{slot.trainer_name} est absent(e) sur ce créneau.", "starts_at"
        )
