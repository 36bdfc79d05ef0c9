"""Rows to API answers; times shown in Europe/Paris."""

from __future__ import annotations

from typing import Any

import asyncpg

from assistance.clock import local
from assistance.french import local as in_paris
from services.training.domain import Slot
from services.training.models import (
    AbsenceOut,
    AppointmentOut,
    Brief,
    SlotOut,
    TrainerOut,
    TrainingRequestOut,
)


def trainer_out(row: asyncpg.Record) -> TrainerOut:
    return TrainerOut(**dict(row))


def absence_out(row: asyncpg.Record) -> AbsenceOut:
    return AbsenceOut(
        id=row["id"],
        trainer_id=row["trainer_id"],
        starts_at=in_paris(row["starts_at"]),
        ends_at=in_paris(row["ends_at"]),
        reason=row["reason"],
    )


def slot_out(slot: Slot | dict[str, Any]) -> SlotOut:
    data = slot.as_json() if isinstance(slot, Slot) else slot
    out = SlotOut.model_validate(data)
    return out.model_copy(
        update={"starts_at": in_paris(out.starts_at), "ends_at": in_paris(out.ends_at)}
    )


def appointment_out(a: dict[str, Any]) -> AppointmentOut:
    return AppointmentOut(
        id=a["id"],
        request_id=a["request_id"],
        dossier_id=a["dossier_id"],
        reference=a["reference"],
        software=a["software"],
        trainer={"id": a["trainer_id"], "name": a["trainer_name"]},
        requester={"email": a["requester_email"], "name": a["requester_name"]},
        starts_at=in_paris(a["starts_at"]),
        ends_at=in_paris(a["ends_at"]),
        status=a["status"],
        sequence=a["sequence"],
        link=a["link"],
        notes=a["notes"],
        outcome_at=local(a["outcome_at"]),
        brief=Brief.model_validate(a["brief"]),
    )


def request_out(r: asyncpg.Record) -> TrainingRequestOut:
    return TrainingRequestOut(
        id=r["id"],
        dossier_id=r["dossier_id"],
        attempt=r["attempt"],
        reference=r["reference"],
        software=r["software"],
        status=r["status"],
        alternatives=[slot_out(s) for s in r["alternatives"]],
        appointment_id=r["appointment_id"],
        received_at=in_paris(r["received_at"]),
    )
