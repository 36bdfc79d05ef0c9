"""R7, never a silent slip: no slot today or the next business day → the training lead is
mailed the best alternatives, the dossier is told (`training.booking.unavailable`), and the lead
books one by hand."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import httpx

from assistance.business_time import DEFAULT_CALENDAR as CAL
from assistance.directory import Role
from deploy.local.stack import LocalStack
from tests.helpers import auth
from tests.services.training.support import (
    NewTrainer,
    hand_over_order,
    request_over_nats,
    stream_event,
)


async def test_no_trainer_for_the_software_alerts_the_lead(
    system, stack: LocalStack, http: httpx.AsyncClient, software: str
) -> None:
    order = hand_over_order(software)
    answer = await request_over_nats(system.settings.nats_url, order)

    assert answer["ok"] is True and answer["status"] == "unavailable", answer
    assert (answer["reason"], answer["alternatives"]) == ("no_trainer", [])
    assert answer["lead"] == system.settings.training_lead_email
    event = await stream_event(
        system.settings.nats_url,
        "training.booking.unavailable",
        f"{answer['request_id']}:unavailable",
    )
    assert event.data["dossier_id"] == order["dossier_id"]
    assert event.data["lead"] == "formation@manao.eu"
    mail = await stack.mail.wait_for(
        lambda m: (
            "formation@manao.eu" in m.rcpt_tos and order["reference"] in m.message()["Subject"]
        )
    )
    message = mail.message()
    assert message["Subject"] == (
        f"[{order['reference']}] Aucun créneau de formation disponible ({software})"
    )
    text = message.get_body(("plain",)).get_content()
    assert "Aucun formateur actif n'enseigne ce logiciel" in text
    assert f"/api/v1/training/requests/{answer['request_id']}/appointment" in text


async def test_an_absent_trainer_leads_to_alternatives_the_lead_books(
    system, stack: LocalStack, http: httpx.AsyncClient, software: str, new_trainer: NewTrainer
) -> None:
    bruno = await new_trainer(software, name="Bruno Formateur")
    now = datetime.now(UTC)
    next_day = CAL.next_business_day(now)
    back = datetime.combine(next_day + timedelta(days=1), time(0), tzinfo=CAL.tz)
    r = await http.post(
        f"/api/v1/training/trainers/{bruno.id}/absences",
        json={
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": back.isoformat(),
            "reason": "Congés",
        },
        headers=bruno.headers,
    )
    assert r.status_code == 201, r.text

    order = hand_over_order(software)
    answer = await request_over_nats(system.settings.nats_url, order)
    assert answer["status"] == "unavailable" and answer["reason"] == "no_slot", answer
    # the first slots of the business day after the window, one per start time
    after = CAL.next_business_day(next_day)
    assert [a["starts_at"] for a in answer["alternatives"]] == [
        datetime.combine(after, time(h, m), tzinfo=CAL.tz).isoformat()
        for h, m in ((9, 0), (9, 30), (10, 0))
    ]
    assert {a["trainer_name"] for a in answer["alternatives"]} == {"Bruno Formateur"}
    mail = await stack.mail.wait_for(
        lambda m: (
            "formation@manao.eu" in m.rcpt_tos and order["reference"] in m.message()["Subject"]
        )
    )
    assert "avec Bruno Formateur" in mail.message().get_body(("plain",)).get_content()

    lead = auth(system.tokens[Role.trainer])  # the demo trainer is the configured lead
    slots = await http.get(f"/api/v1/training/slots?software={software}", headers=lead)
    assert slots.status_code == 200
    assert [s["starts_at"] for s in slots.json()] == [
        a["starts_at"] for a in answer["alternatives"]
    ]
    waiting = await http.get("/api/v1/training/requests?status=unavailable", headers=lead)
    assert answer["request_id"] in [w["id"] for w in waiting.json()]

    # another trainer may not book Bruno; the lead may, on the first alternative
    intruder = await new_trainer(software, name="Zoé")
    choice = answer["alternatives"][0]
    path = f"/api/v1/training/requests/{answer['request_id']}/appointment"
    body = {"trainer_id": choice["trainer_id"], "starts_at": choice["starts_at"]}
    assert (await http.post(path, json=body, headers=intruder.headers)).status_code == 403
    during_absence = {
        **body,
        "starts_at": datetime.combine(next_day, time(14), tzinfo=CAL.tz).isoformat(),
    }
    refused = await http.post(path, json=during_absence, headers=lead)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "trainer_absent"
    booked = await http.post(path, json=body, headers=lead)
    assert booked.status_code == 201, booked.text
    appointment = booked.json()
    assert appointment["starts_at"] == choice["starts_at"]
    assert appointment["trainer"]["name"] == "Bruno Formateur"
    assert appointment["brief"]["need"] == order["need"]
    event = await stream_event(
        system.settings.nats_url, "training.appointment.booked", f"{appointment['id']}:booked"
    )
    assert event.data["dossier_id"] == order["dossier_id"]
    again = await http.post(path, json=body, headers=lead)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_booked"

    # the absence cannot be moved over a planned appointment
    r = await http.post(
        f"/api/v1/training/trainers/{bruno.id}/absences",
        json={"starts_at": choice["starts_at"], "ends_at": choice["ends_at"]},
        headers=bruno.headers,
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "appointments_planned"
