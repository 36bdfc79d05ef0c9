"""The hand-over over the real stack (R7): NATS request → booked answer → event on the TRAINING
stream → invitations mailed; then rescheduling and cancelling update the same calendar event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from assistance.business_time import DEFAULT_CALENDAR as CAL
from assistance.directory import Role
from deploy.local.stack import LocalStack
from services.training import domain
from services.training.domain import Agenda, SlotPolicy
from tests.helpers import auth
from tests.services.training.support import (
    NewTrainer,
    calendar_of,
    hand_over_order,
    request_over_nats,
    stream_event,
)

MONDAY_10 = "2030-01-07T10:00:00+01:00"
POLICY = SlotPolicy(notice=timedelta(minutes=30))  # the service's defaults (TrainingSettings)


def earliest(trainer_id: uuid.UUID, name: str, at: datetime) -> datetime:
    return domain.plan(CAL, [Agenda(trainer_id, name)], at, POLICY).window[0].starts_at


async def organisation_id(pool: asyncpg.Pool) -> uuid.UUID:
    return await pool.fetchval("SELECT id FROM directory.organisations WHERE name = 'Dupont SA'")


async def test_nats_round_trip_books_the_earliest_slot(
    system, http: httpx.AsyncClient, pool: asyncpg.Pool, software: str, new_trainer: NewTrainer
) -> None:
    fanny = await new_trainer(software)
    org = await organisation_id(pool)
    order = hand_over_order(software, organisation_id=str(org))
    before = datetime.now(UTC)
    answer = await request_over_nats(system.settings.nats_url, order)
    after = datetime.now(UTC)

    assert answer["ok"] is True and answer["status"] == "booked", answer
    assert answer["dossier_id"] == order["dossier_id"]
    assert answer["trainer_id"] == str(fanny.id)
    assert answer["trainer_name"] == "Fanny Formatrice"
    starts = datetime.fromisoformat(answer["starts_at"])
    # R7: the earliest slot today or the next business day (the grid may turn during the call)
    assert starts in {earliest(fanny.id, fanny.name, before), earliest(fanny.id, fanny.name, after)}
    assert datetime.fromisoformat(answer["ends_at"]) - starts == timedelta(hours=1)
    assert starts.utcoffset() in (timedelta(hours=1), timedelta(hours=2))  # shown in Paris time
    assert answer["link"].startswith("https://partage.manao.eu/salle/")
    assert len(answer["link"].rsplit("/", 1)[1]) >= 20  # an unguessable room

    # the fact reaches the TRAINING stream with the dossier id (the signal bridge's key)
    event = await stream_event(
        system.settings.nats_url,
        "training.appointment.booked",
        f"{answer['appointment_id']}:booked",
    )
    assert event.data["dossier_id"] == order["dossier_id"]
    assert event.data["appointment_id"] == answer["appointment_id"]
    assert datetime.fromisoformat(event.data["starts_at"]) == starts
    assert event.data["trainer_name"] == "Fanny Formatrice"
    assert event.data["link"] == answer["link"]

    # idempotent on (dossier_id, attempt): the same hand-over gets the same answer, once
    again = await request_over_nats(system.settings.nats_url, order)
    assert again == answer
    count = await pool.fetchval(
        "SELECT count(*) FROM training.appointments WHERE dossier_id = $1",
        uuid.UUID(order["dossier_id"]),
    )
    assert count == 1

    # engagement 4: the trainer reads the brief in the API
    r = await http.get(
        f"/api/v1/training/appointments/{answer['appointment_id']}", headers=fanny.headers
    )
    assert r.status_code == 200, r.text
    brief = r.json()["brief"]
    assert brief["organisation"]["name"] == "Dupont SA"
    assert brief["organisation"]["context"] == "Cabinet comptable de 40 personnes, 3 sites."
    assert (brief["context"], brief["need"]) == (order["context"], order["need"])
    assert (brief["software"], brief["version"]) == (software, "5.2")
    assert (
        "Contexte de l'organisation : Cabinet comptable de 40 personnes, 3 sites."
        in (brief["text"])
    )


async def test_a_malformed_hand_over_is_refused(system) -> None:
    answer = await request_over_nats(system.settings.nats_url, {"dossier_id": "not-a-uuid"})
    assert answer["ok"] is False
    assert answer["error"].startswith("invalid hand-over: dossier_id")


async def test_invitations_are_mailed_then_updated_then_cancelled(
    system,
    stack: LocalStack,
    http: httpx.AsyncClient,
    software: str,
    new_trainer: NewTrainer,
) -> None:
    fanny = await new_trainer(software)
    order = hand_over_order(software)
    customer = order["requester_email"]
    answer = await request_over_nats(system.settings.nats_url, order)
    appointment = answer["appointment_id"]
    uid = f"training-{appointment}@{system.settings.mail_domain}"

    def invitation_to(address: str, sequence: int):  # noqa: ANN202 - a predicate
        return lambda m: (
            address in m.rcpt_tos
            and f"training.{appointment}.{sequence}." in (str(m.message()["Message-ID"]))
        )

    mail = await stack.mail.wait_for(invitation_to(customer, 0))
    cal = calendar_of(mail)
    event = cal.walk("VEVENT")[0]
    assert cal["METHOD"] == "REQUEST"
    assert (event["UID"], event["SEQUENCE"]) == (uid, 0)
    assert event.decoded("DTSTART") == datetime.fromisoformat(answer["starts_at"])
    assert str(event["LOCATION"]) == answer["link"]
    trainer_mail = await stack.mail.wait_for(invitation_to(fanny.email, 0))
    trainer_text = trainer_mail.message().get_body(("plain",)).get_content()
    assert f"Fiche de préparation — dossier {order['reference']}" in trainer_text
    assert "Besoin technique (diagnostic) : Paramétrer le lettrage automatique" in trainer_text

    # rescheduling: same UID, SEQUENCE 1, the new time
    later = datetime.fromisoformat(answer["starts_at"]).astimezone(CAL.tz)
    new_day = CAL.next_business_day(CAL.next_business_day(later))
    new_start = datetime.combine(new_day, datetime.min.time().replace(hour=14), tzinfo=CAL.tz)
    r = await http.post(
        f"/api/v1/training/appointments/{appointment}/reschedule",
        json={"starts_at": new_start.isoformat(), "reason": "Demande du client"},
        headers=fanny.headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["sequence"], r.json()["status"]) == (1, "booked")
    assert datetime.fromisoformat(r.json()["starts_at"]) == new_start
    moved = calendar_of(await stack.mail.wait_for(invitation_to(customer, 1)))
    event = moved.walk("VEVENT")[0]
    assert (moved["METHOD"], event["UID"], event["SEQUENCE"]) == ("REQUEST", uid, 1)
    assert event.decoded("DTSTART") == new_start
    rescheduled = await stream_event(
        system.settings.nats_url, "training.appointment.rescheduled", f"{appointment}:rescheduled:1"
    )
    assert rescheduled.data["dossier_id"] == order["dossier_id"]
    assert datetime.fromisoformat(rescheduled.data["starts_at"]) == new_start

    # a Saturday, or across lunch: refused with the field named
    saturday = new_start + timedelta(days=(5 - new_start.weekday()) % 7 or 7)
    for bad in (saturday, new_start.replace(hour=11, minute=30)):
        r = await http.post(
            f"/api/v1/training/appointments/{appointment}/reschedule",
            json={"starts_at": bad.isoformat()},
            headers=fanny.headers,
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "starts_at"

    # cancelling: METHOD:CANCEL, SEQUENCE 2, for both
    r = await http.post(
        f"/api/v1/training/appointments/{appointment}/cancel",
        json={"reason": "Besoin couvert par la documentation"},
        headers=fanny.headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["sequence"]) == ("cancelled", 2)
    for address in (customer, fanny.email):
        gone = calendar_of(await stack.mail.wait_for(invitation_to(address, 2)))
        event = gone.walk("VEVENT")[0]
        assert (gone["METHOD"], event["UID"], event["SEQUENCE"]) == ("CANCEL", uid, 2)
        assert event["STATUS"] == "CANCELLED"
    cancelled = await stream_event(
        system.settings.nats_url, "training.appointment.cancelled", f"{appointment}:cancelled"
    )
    assert cancelled.data["reason"] == "Besoin couvert par la documentation"
    again = await http.post(
        f"/api/v1/training/appointments/{appointment}/cancel",
        json={"reason": "encore"},
        headers=fanny.headers,
    )
    assert again.status_code == 409


async def test_who_may_call(system, http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/v1/training/appointments")).status_code == 401
    customer = auth(system.tokens[Role.customer])
    assert (await http.get("/api/v1/training/appointments", headers=customer)).status_code == 403
    r = await http.put(
        "/api/v1/training/trainers/me",
        json={"softwares": ["manao-compta"]},
        headers=auth(system.tokens[Role.technician]),
    )
    assert r.status_code == 403
    r = await http.put(
        "/api/v1/training/trainers/me",
        json={"softwares": ["inconnu"]},
        headers=auth(system.tokens[Role.trainer]),
    )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "softwares"
    missing = await http.get(
        f"/api/v1/training/appointments/{uuid.uuid4()}", headers=auth(system.tokens[Role.admin])
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "appointment_not_found"


async def test_bad_input_is_never_a_5xx(
    system, http: httpx.AsyncClient, software: str, new_trainer: NewTrainer
) -> None:
    fanny = await new_trainer(software)
    answer = await request_over_nats(system.settings.nats_url, hand_over_order(software))
    appointment = f"/api/v1/training/appointments/{answer['appointment_id']}"
    absences = f"/api/v1/training/trainers/{fanny.id}/absences"
    unknown_request = f"/api/v1/training/requests/{uuid.uuid4()}"
    cases = [
        (f"{appointment}/reschedule", {"starts_at": "9999-12-31T23:30:00+00:00"}, "starts_at"),
        (f"{appointment}/reschedule", {"starts_at": "2030-01-07T10:00:00"}, "starts_at"),
        (f"{appointment}/reschedule", {"starts_at": "demain"}, "starts_at"),
        (f"{appointment}/reschedule", {"starts_at": "2099-06-02T10:00:00+02:00"}, "starts_at"),
        (f"{appointment}/held", {"notes": 42}, "notes"),
        (f"{appointment}/held", {"notes": "ok", "extra": 1}, "extra"),
        (absences, {"starts_at": MONDAY_10, "ends_at": "2030-01-06T10:00:00+01:00"}, None),
        (absences, {"starts_at": "0001-01-01T00:00:00Z", "ends_at": MONDAY_10}, "starts_at"),
        (
            f"{unknown_request}/appointment",
            {"trainer_id": "x", "starts_at": MONDAY_10},
            "trainer_id",
        ),
    ]
    for path, body, field in cases:
        r = await http.post(path, json=body, headers=fanny.headers)
        assert r.status_code == 422, (path, body, r.text)
        assert r.json()["error"]["field"] == field, (body, r.json())
    broken = await http.post(
        f"{appointment}/held",
        content=b"{not json",
        headers={**fanny.headers, "Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    missing = await http.post(
        f"/api/v1/training/requests/{uuid.uuid4()}/appointment",
        json={"trainer_id": str(fanny.id), "starts_at": MONDAY_10},
        headers=fanny.headers,
    )
    assert missing.status_code == 404
    not_uuid = await http.get("/api/v1/training/appointments/abc", headers=fanny.headers)
    assert not_uuid.status_code == 422
