"""Training storage: SQL with `$n` parameters; callers hold the transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from services.training.domain import Agenda, Slot
from services.training.models import HandOverIn

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

# --- trainers and absences -----------------------------------------------------------------


async def save_trainer(
    conn: Conn, trainer_id: uuid.UUID, name: str, email: str, softwares: list[str], active: bool
) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO training.trainers (id, name, email, softwares, active)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email,
               softwares = EXCLUDED.softwares, active = EXCLUDED.active, updated_at = now()
           RETURNING id, name, email, softwares, active""",
        trainer_id,
        name,
        email,
        softwares,
        active,
    )


async def update_trainer(
    conn: Conn, trainer_id: uuid.UUID, softwares: list[str], active: bool
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """UPDATE training.trainers SET softwares = $2, active = $3, updated_at = now()
           WHERE id = $1 RETURNING id, name, email, softwares, active""",
        trainer_id,
        softwares,
        active,
    )


async def get_trainer(
    conn: Conn, trainer_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, name, email, softwares, active FROM training.trainers WHERE id = $1"
        + (" FOR UPDATE" if lock else ""),
        trainer_id,
    )


async def list_trainers(conn: Conn, software: str | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, name, email, softwares, active FROM training.trainers
           WHERE $1::text IS NULL OR $1 = ANY(softwares) ORDER BY name, id""",
        software,
    )


async def teaching(conn: Conn, software: str) -> list[asyncpg.Record]:
    """Active trainers of `software`, locked (always in id order) for the booking.

    Whoever writes a trainer's agenda locks the trainer's row first: two bookings that only
    share-locked it both inserted into the same free slot, each waited in the exclusion
    constraint's check for the other's uncommitted row, and PostgreSQL broke the deadlock.
    Locked in one global order, bookings for the same trainers take turns instead; an absence
    cannot be added meanwhile. Foreign keys only take KEY SHARE, which this does not block."""
    return await conn.fetch(
        """SELECT id, name, email FROM (
               SELECT id, name, email FROM training.trainers
                WHERE active AND $1 = ANY(softwares) ORDER BY id FOR NO KEY UPDATE
           ) AS locked ORDER BY name, id""",
        software,
    )


async def agendas(
    conn: Conn, trainers: list[asyncpg.Record], since: datetime, until: datetime
) -> list[Agenda]:
    """Each trainer's appointments and absences overlapping [since, until)."""
    ids = [t["id"] for t in trainers]
    busy = await conn.fetch(
        """SELECT trainer_id, starts_at, ends_at, 'appointment' AS what
             FROM training.appointments
            WHERE trainer_id = ANY($1::uuid[]) AND status <> 'cancelled'
              AND starts_at < $3 AND ends_at > $2
           UNION ALL
           SELECT trainer_id, starts_at, ends_at, 'absence' FROM training.absences
            WHERE trainer_id = ANY($1::uuid[]) AND starts_at < $3 AND ends_at > $2""",
        ids,
        since,
        until,
    )
    out = []
    for t in trainers:
        mine = [b for b in busy if b["trainer_id"] == t["id"]]
        out.append(
            Agenda(
                trainer_id=t["id"],
                name=t["name"],
                appointments=tuple(
                    (b["starts_at"], b["ends_at"]) for b in mine if b["what"] == "appointment"
                ),
                absences=tuple(
                    (b["starts_at"], b["ends_at"]) for b in mine if b["what"] == "absence"
                ),
            )
        )
    return out


async def add_absence(
    conn: Conn, trainer_id: uuid.UUID, starts_at: datetime, ends_at: datetime, reason: str
) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO training.absences (id, trainer_id, starts_at, ends_at, reason)
           VALUES ($1, $2, $3, $4, $5) RETURNING id, trainer_id, starts_at, ends_at, reason""",
        uuid.uuid4(),
        trainer_id,
        starts_at,
        ends_at,
        reason,
    )


async def list_absences(conn: Conn, trainer_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, trainer_id, starts_at, ends_at, reason FROM training.absences
           WHERE trainer_id = $1 ORDER BY starts_at""",
        trainer_id,
    )


async def delete_absence(conn: Conn, trainer_id: uuid.UUID, absence_id: uuid.UUID) -> bool:
    result = await conn.execute(
        "DELETE FROM training.absences WHERE id = $1 AND trainer_id = $2", absence_id, trainer_id
    )
    return result == "DELETE 1"


async def booked_during(
    conn: Conn, trainer_id: uuid.UUID, starts_at: datetime, ends_at: datetime
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""{APPOINTMENTS} WHERE a.trainer_id = $1 AND a.status = 'booked'
              AND a.starts_at < $3 AND a.ends_at > $2 ORDER BY a.starts_at""",
        trainer_id,
        starts_at,
        ends_at,
    )


async def absent_during(
    conn: Conn, trainer_id: uuid.UUID, starts_at: datetime, ends_at: datetime
) -> bool:
    return bool(
        await conn.fetchval(
            """SELECT 1 FROM training.absences
               WHERE trainer_id = $1 AND starts_at < $3 AND ends_at > $2 LIMIT 1""",
            trainer_id,
            starts_at,
            ends_at,
        )
    )


# --- hand-overs (training requests) --------------------------------------------------------

REQUESTS = """SELECT r.*, (SELECT a.id FROM training.appointments a
                            WHERE a.request_id = r.id AND a.status <> 'cancelled'
                            ORDER BY a.created_at DESC LIMIT 1) AS appointment_id
              FROM training.requests r"""


async def claim_request(conn: asyncpg.Connection, order: HandOverIn) -> asyncpg.Record | None:
    """Record a hand-over; None when (dossier_id, attempt) was already recorded (idempotent).
    A concurrent twin waits here until the first commits."""
    return await conn.fetchrow(
        """INSERT INTO training.requests (id, dossier_id, attempt, reference, software, version,
               organisation_id, requester_email, requester_name, subject, description, context,
               need, status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending')
           ON CONFLICT (dossier_id, attempt) DO NOTHING
           RETURNING *""",
        uuid.uuid4(),
        order.dossier_id,
        order.attempt,
        order.reference,
        order.software,
        order.version,
        order.organisation_id,
        order.requester_email,
        order.requester_name,
        order.subject,
        order.description,
        order.context,
        order.need,
    )


async def answer_of(conn: Conn, dossier_id: uuid.UUID, attempt: int) -> dict[str, Any] | None:
    return await conn.fetchval(
        "SELECT answer FROM training.requests WHERE dossier_id = $1 AND attempt = $2",
        dossier_id,
        attempt,
    )


async def finish_request(
    conn: Conn,
    request_id: uuid.UUID,
    status: str,
    answer: dict[str, Any] | None = None,
    alternatives: list[Slot] | None = None,
) -> None:
    await conn.execute(
        """UPDATE training.requests SET status = $2, answer = coalesce($3, answer),
               alternatives = coalesce($4, alternatives) WHERE id = $1""",
        request_id,
        status,
        answer,
        [s.as_json() for s in alternatives] if alternatives is not None else None,
    )


async def get_request(
    conn: Conn, request_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"{REQUESTS} WHERE r.id = $1" + (" FOR UPDATE OF r" if lock else ""), request_id
    )


async def list_requests(conn: Conn, status: str | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""{REQUESTS} WHERE $1::text IS NULL OR r.status = $1
            ORDER BY r.received_at DESC LIMIT {int(limit)}""",
        status,
    )


def order_of(request: asyncpg.Record) -> HandOverIn:
    """The hand-over as it was recorded (to rebuild a brief)."""
    return HandOverIn.model_validate(dict(request))


# --- appointments --------------------------------------------------------------------------

APPOINTMENTS = """SELECT a.*, r.reference, r.software, r.requester_email, r.requester_name,
                         r.organisation_id, r.attempt, t.name AS trainer_name,
                         t.email AS trainer_email
                  FROM training.appointments a
                  JOIN training.requests r ON r.id = a.request_id
                  JOIN training.trainers t ON t.id = a.trainer_id"""


async def insert_appointment(
    conn: asyncpg.Connection,
    *,
    request: asyncpg.Record,
    slot: Slot,
    link: str,
    brief: dict[str, Any],
) -> uuid.UUID:
    """Raises asyncpg.ExclusionViolationError when the trainer is taken then (R7)."""
    appointment_id = uuid.uuid4()
    await conn.execute(
        """INSERT INTO training.appointments (id, request_id, dossier_id, trainer_id, starts_at,
               ends_at, status, link, brief)
           VALUES ($1, $2, $3, $4, $5, $6, 'booked', $7, $8)""",
        appointment_id,
        request["id"],
        request["dossier_id"],
        slot.trainer_id,
        slot.starts_at,
        slot.ends_at,
        link,
        brief,
    )
    return appointment_id


async def get_appointment(
    conn: Conn, appointment_id: uuid.UUID, *, lock: bool = False
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"{APPOINTMENTS} WHERE a.id = $1" + (" FOR UPDATE OF a" if lock else ""), appointment_id
    )
    return dict(row) if row is not None else None


async def list_appointments(
    conn: Conn,
    *,
    trainer_id: uuid.UUID | None,
    status: str | None,
    dossier_id: uuid.UUID | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    where = """($1::uuid IS NULL OR a.trainer_id = $1) AND ($2::text IS NULL OR a.status = $2)
               AND ($3::uuid IS NULL OR a.dossier_id = $3)"""
    args = (trainer_id, status, dossier_id)
    total = await conn.fetchval(
        f"SELECT count(*) FROM training.appointments a WHERE {where}", *args
    )
    rows = await conn.fetch(
        f"{APPOINTMENTS} WHERE {where} ORDER BY a.starts_at, a.id "
        f"LIMIT {int(limit)} OFFSET {int(offset)}",
        *args,
    )
    return [dict(r) for r in rows], total


async def move_appointment(
    conn: asyncpg.Connection,
    appointment_id: uuid.UUID,
    trainer_id: uuid.UUID,
    starts_at: datetime,
    ends_at: datetime,
    brief: dict[str, Any],
) -> None:
    """A new time (and maybe trainer): SEQUENCE + 1. Raises ExclusionViolationError."""
    await conn.execute(
        """UPDATE training.appointments SET trainer_id = $2, starts_at = $3, ends_at = $4,
               brief = $5, sequence = sequence + 1, updated_at = now() WHERE id = $1""",
        appointment_id,
        trainer_id,
        starts_at,
        ends_at,
        brief,
    )


async def set_status(
    conn: asyncpg.Connection,
    appointment_id: uuid.UUID,
    status: str,
    notes: str | None,
    *,
    bump_sequence: bool = False,
) -> None:
    await conn.execute(
        """UPDATE training.appointments SET status = $2, notes = $3, outcome_at = now(),
               sequence = sequence + $4, updated_at = now() WHERE id = $1""",
        appointment_id,
        status,
        notes,
        1 if bump_sequence else 0,
    )


# --- the client's history (engagement 4) ---------------------------------------------------


async def previous_dossiers(
    conn: Conn,
    organisation_id: uuid.UUID | None,
    requester_email: str,
    exclude: uuid.UUID,
    limit: int,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT reference, subject, software, kind, status, resolution, received_at,
                   closed_at
            FROM training.client_dossiers
            WHERE dossier_id <> $3 AND (organisation_id = $1
                  OR ($1::uuid IS NULL AND lower(requester_email) = lower($2)))
            ORDER BY received_at DESC NULLS LAST, reference DESC LIMIT {int(limit)}""",
        organisation_id,
        requester_email,
        exclude,
    )
    return [dict(r) for r in rows]


async def previous_trainings(
    conn: Conn,
    organisation_id: uuid.UUID | None,
    requester_email: str,
    exclude_request: uuid.UUID,
    limit: int,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT r.reference, r.software, a.starts_at, t.name AS trainer_name, a.status,
                   a.notes
            FROM training.appointments a
            JOIN training.requests r ON r.id = a.request_id
            JOIN training.trainers t ON t.id = a.trainer_id
            WHERE r.id <> $3 AND (r.organisation_id = $1
                  OR ($1::uuid IS NULL AND lower(r.requester_email) = lower($2)))
            ORDER BY a.starts_at DESC LIMIT {int(limit)}""",
        organisation_id,
        requester_email,
        exclude_request,
    )
    return [dict(r) for r in rows]
