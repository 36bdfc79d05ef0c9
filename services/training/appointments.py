"""An appointment's life after booking: rescheduled, cancelled, then held or missed (R7).

Every change is one transaction: the row, the calendar updates (same UID, SEQUENCE + 1) and
the event for the dossier's workflow. Held proposes the dossier's resolution; missed makes the
workflow hand over again (attempt + 1) for a new booking.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from assistance.directory import Principal
from assistance.errors import Conflict, DomainError, Forbidden, NotFound
from services.training import events, notify, repo
from services.training.booking import check_slot, in_transaction, is_lead, usable_trainer
from services.training.context import Context
from services.training.domain import Slot
from services.training.invitation import Person
from services.training.models import CancelIn, HeldIn, MissedIn, RescheduleIn

# How a closed appointment is worded in a refusal (a person reads it, never the code).
CLOSED_AS = {"held": "formation tenue", "missed": "client absent", "cancelled": "annulé"}


async def _booked_appointment(
    ctx: Context, conn: asyncpg.Connection, appointment_id: uuid.UUID, who: Principal
) -> dict[str, Any]:
    appt = await repo.get_appointment(conn, appointment_id, lock=True)
    if appt is None:
        raise NotFound("appointment_not_found", "Rendez-vous introuvable.")
    if not (is_lead(ctx, who) or who.user_id == appt["trainer_id"]):
        raise Forbidden("not_your_appointment", "Ce rendez-vous est celui d'un autre formateur.")
    if appt["status"] != "booked":
        raise Conflict(
            "appointment_closed",
            f"Ce rendez-vous n'est plus modifiable ({CLOSED_AS.get(appt['status'], 'clos')}).",
        )
    return appt


async def reschedule(
    ctx: Context, appointment_id: uuid.UUID, body: RescheduleIn, who: Principal
) -> None:
    async def work(conn: asyncpg.Connection) -> None:
        before = await _booked_appointment(ctx, conn, appointment_id, who)
        trainer_id = body.trainer_id or before["trainer_id"]
        if trainer_id != before["trainer_id"] and not is_lead(ctx, who):
            raise Forbidden("not_lead", "Seul le responsable formation change de formateur.")
        trainer = await usable_trainer(conn, trainer_id, before["software"])
        duration = before["ends_at"] - before["starts_at"]
        slot = Slot(trainer["id"], trainer["name"], body.starts_at, body.starts_at + duration)
        if slot.starts_at == before["starts_at"] and slot.trainer_id == before["trainer_id"]:
            raise DomainError("same_slot", "Le rendez-vous est déjà sur ce créneau.", "starts_at")
        await check_slot(ctx, conn, slot)
        try:
            async with conn.transaction():
                await repo.move_appointment(
                    conn, appointment_id, slot.trainer_id, slot.starts_at, slot.ends_at,
                    before["brief"],
                )  # fmt: skip
        except asyncpg.ExclusionViolationError as exc:
            raise Conflict(
                "slot_taken", f"{trainer['name']} a déjà un rendez-vous sur ce créneau."
            ) from exc
        after = await repo.get_appointment(conn, appointment_id)
        assert after is not None
        await notify.invite(conn, notify.invitation_of(after, "rescheduled", body.reason))
        if after["trainer_id"] != before["trainer_id"]:
            # the former trainer's calendar drops the event: same UID, newer SEQUENCE
            former = Person(before["trainer_email"], before["trainer_name"])
            gone = {**before, "sequence": after["sequence"]}
            cancel = notify.invitation_of(gone, "cancelled", "Confié à un autre formateur.", former)
            await notify.invite(conn, cancel, ["trainer"])
        await events.publish_appointment(
            conn,
            events.RESCHEDULED,
            after,
            previous_starts_at=before["starts_at"].isoformat(),
            reason=body.reason,
        )

    await in_transaction(ctx, work)


async def cancel(ctx: Context, appointment_id: uuid.UUID, body: CancelIn, who: Principal) -> None:
    async def work(conn: asyncpg.Connection) -> None:
        await _booked_appointment(ctx, conn, appointment_id, who)
        await repo.set_status(conn, appointment_id, "cancelled", None, bump_sequence=True)
        appt = await repo.get_appointment(conn, appointment_id)
        assert appt is not None
        await conn.execute(
            "UPDATE training.requests SET status = 'cancelled' WHERE id = $1", appt["request_id"]
        )
        await notify.invite(conn, notify.invitation_of(appt, "cancelled", body.reason))
        await events.publish_appointment(conn, events.CANCELLED, appt, reason=body.reason)

    await in_transaction(ctx, work)


async def mark_held(ctx: Context, appointment_id: uuid.UUID, body: HeldIn, who: Principal) -> None:
    """The trainer held the session (possibly earlier than planned, by agreement)."""

    async def work(conn: asyncpg.Connection) -> None:
        await _booked_appointment(ctx, conn, appointment_id, who)
        await repo.set_status(conn, appointment_id, "held", body.notes)
        appt = await repo.get_appointment(conn, appointment_id)
        assert appt is not None
        await events.publish_appointment(conn, events.HELD, appt, notes=body.notes)

    await in_transaction(ctx, work)


async def mark_missed(
    ctx: Context, appointment_id: uuid.UUID, body: MissedIn, who: Principal
) -> None:
    """The customer did not come: the dossier's workflow books again (attempt + 1)."""

    async def work(conn: asyncpg.Connection) -> None:
        before = await _booked_appointment(ctx, conn, appointment_id, who)
        if ctx.clock() < before["starts_at"]:
            raise DomainError(
                "not_started", "Le rendez-vous n'a pas encore commencé : il ne peut être manqué."
            )
        await repo.set_status(conn, appointment_id, "missed", body.notes or None)
        appt = await repo.get_appointment(conn, appointment_id)
        assert appt is not None
        await events.publish_appointment(conn, events.MISSED, appt, notes=body.notes)

    await in_transaction(ctx, work)
