"""Outcomes (R7): the trainer marks an appointment held (with notes) or missed; the fact goes
to the TRAINING stream for the dossier's workflow. Only the trainer (or the lead) may."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from assistance.directory import Role
from tests.helpers import auth
from tests.services.training.support import (
    NewTrainer,
    hand_over_order,
    request_over_nats,
    stream_event,
)


async def test_held_with_notes_once(
    system, http: httpx.AsyncClient, software: str, new_trainer: NewTrainer
) -> None:
    fanny = await new_trainer(software)
    order = hand_over_order(software)
    answer = await request_over_nats(system.settings.nats_url, order)
    held = f"/api/v1/training/appointments/{answer['appointment_id']}/held"
    notes = {"notes": "Lettrage automatique paramétré avec la cliente."}

    other = await new_trainer(software, name="Zoé")
    assert (await http.post(held, json=notes, headers=other.headers)).status_code == 403
    customer = auth(system.tokens[Role.customer])
    assert (await http.post(held, json=notes, headers=customer)).status_code == 403
    blank = await http.post(held, json={"notes": "   "}, headers=fanny.headers)
    assert blank.status_code == 422
    assert blank.json()["error"]["field"] == "notes"

    key = {"Idempotency-Key": f"held-{uuid.uuid4()}"}
    first = await http.post(held, json=notes, headers={**fanny.headers, **key})
    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["notes"]) == ("held", notes["notes"])
    replay = await http.post(held, json=notes, headers={**fanny.headers, **key})
    assert (replay.status_code, replay.json()) == (200, first.json())
    again = await http.post(held, json=notes, headers=fanny.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "appointment_closed"

    event = await stream_event(
        system.settings.nats_url, "training.appointment.held", f"{answer['appointment_id']}:held"
    )
    assert event.data["dossier_id"] == order["dossier_id"]
    assert event.data["notes"] == notes["notes"]


async def test_missed_only_once_started(
    system, http: httpx.AsyncClient, pool: asyncpg.Pool, software: str, new_trainer: NewTrainer
) -> None:
    fanny = await new_trainer(software)
    order = hand_over_order(software)
    answer = await request_over_nats(system.settings.nats_url, order)
    missed = f"/api/v1/training/appointments/{answer['appointment_id']}/missed"

    early = await http.post(missed, json={}, headers=fanny.headers)
    assert early.status_code == 422
    assert early.json()["error"]["code"] == "not_started"

    await pool.execute(
        """UPDATE training.appointments SET starts_at = now() - interval '90 minutes',
               ends_at = now() - interval '30 minutes' WHERE id = $1""",
        uuid.UUID(answer["appointment_id"]),
    )
    r = await http.post(missed, json={"notes": "Pas de connexion"}, headers=fanny.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "missed"
    event = await stream_event(
        system.settings.nats_url,
        "training.appointment.missed",
        f"{answer['appointment_id']}:missed",
    )
    assert event.data["dossier_id"] == order["dossier_id"]

    # the workflow hands over again (attempt 2): a new appointment, the miss in the brief
    retry = await request_over_nats(system.settings.nats_url, {**order, "attempt": 2})
    assert retry["status"] == "booked" and retry["appointment_id"] != answer["appointment_id"]
    brief = (
        await http.get(
            f"/api/v1/training/appointments/{retry['appointment_id']}", headers=fanny.headers
        )
    ).json()["brief"]
    assert [(t["reference"], t["status"], t["notes"]) for t in brief["previous_trainings"]] == [
        (order["reference"], "missed", "Pas de connexion")
    ]
    assert "manquée, dossier " + order["reference"] + ") : Pas de connexion" in brief["text"]


async def test_a_trainer_agenda_lists_their_appointments(
    system, http: httpx.AsyncClient, software: str, new_trainer: NewTrainer
) -> None:
    fanny = await new_trainer(software)
    orders = [hand_over_order(software) for _ in range(2)]
    answers = [await request_over_nats(system.settings.nats_url, o) for o in orders]
    r = await http.get("/api/v1/training/appointments?mine=true", headers=fanny.headers)
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 2
    assert [a["id"] for a in page["items"]] == [a["appointment_id"] for a in answers]
    assert [a["starts_at"] for a in page["items"]] == sorted(a["starts_at"] for a in answers)
    by_dossier = await http.get(
        f"/api/v1/training/appointments?dossier={orders[1]['dossier_id']}",
        headers=auth(system.tokens[Role.technician]),
    )
    assert [a["id"] for a in by_dossier.json()["items"]] == [answers[1]["appointment_id"]]
