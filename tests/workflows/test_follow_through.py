"""R2 on the workflow, with time skipping: no open dossier stalls silently.

After the first response, `reminder_hours` business hours without activity remind the
technician, `escalation_hours` more escalate to the admins. Activity (a response, a request,
a customer message) restarts the count; an internal note does not, so notes alone cannot keep
a dossier quiet. Waiting for the customer reminds the customer after
`customer_reminder_hours`, and the technician only after twice that.
"""

from __future__ import annotations

from tests.workflows.harness import (
    CUSTOMER,
    TECH,
    Fakes,
    at_about,
    eventually,
    in_business_hours,
    opening,
    paris,
    running_worker,
    settled,
    skip_to,
    start,
    time_skipping,
)
from workflows.dossier import DossierWorkflow
from workflows.types import ActorCmd, CustomerMessage, MessageCmd


async def test_quiet_dossier_reminds_then_escalates_and_a_response_restarts_the_count() -> None:
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-12T09:00:00")  # Monday
        await skip_to(env, received)
        handle = await start(env, queue, opening(received))
        await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
        await skip_to(env, paris("2032-01-12T09:30:00"))
        await handle.execute_update(
            DossierWorkflow.respond, MessageCmd(actor=TECH, text="Nous regardons l'export.")
        )
        await skip_to(env, paris("2032-01-12T11:00:00"))
        view = await handle.execute_update(
            DossierWorkflow.note, MessageCmd(actor=TECH, text="Voir le journal du serveur.")
        )
        assert view.status == "in_progress"

        # a note is not activity: the reminder stays 4 business hours after the response
        await skip_to(env, paris("2032-01-12T14:29:00"))
        await settled(handle)
        assert fakes.notices == []
        await skip_to(env, paris("2032-01-13T10:00:00"))
        await settled(handle)
        assert fakes.notice_kinds() == ["reminder"]
        assert at_about(fakes.notice_times[0], paris("2032-01-12T14:30:00"))
        reminder = fakes.notices[0]
        assert (reminder.audience, reminder.technician_id) == ("technician", TECH.user_id)
        assert reminder.subject == "Relance : dossier D-2026-000042"
        assert reminder.text.endswith("aucune action depuis un moment.")

        # Tuesday 10:00, before the escalation (due Tuesday 14:30): a response restarts it all
        await handle.execute_update(
            DossierWorkflow.respond, MessageCmd(actor=TECH, text="Un correctif arrive.")
        )
        await skip_to(env, paris("2032-01-19T09:00:00"))
        await settled(handle)
        assert fakes.notice_kinds() == [
            "reminder",
            "reminder",
            "escalation",
            "reminder",
            "escalation",
            "reminder",
        ]
        assert at_about(fakes.notice_times[1], paris("2032-01-13T15:00:00"))  # + 4
        assert at_about(fakes.notice_times[2], paris("2032-01-14T15:00:00"))  # + 4 + 8
        assert fakes.notices[2].audience == "admins"
        # never silent (R2): after an escalation a new cycle starts from it
        assert at_about(fakes.notice_times[3], paris("2032-01-15T10:00:00"))  # + 4
        assert at_about(fakes.notice_times[4], paris("2032-01-16T10:00:00"))  # + 4 + 8
        assert at_about(fakes.notice_times[5], paris("2032-01-16T15:00:00"))  # + 4
        assert all(in_business_hours(t) for t in fakes.notice_times)
        assert fakes.types() == [
            "opened",
            "taken",
            "responded",
            "noted",
            "reminded",
            "responded",
            "reminded",
            "escalated",
            "reminded",
            "escalated",
            "reminded",
        ]


async def test_waiting_for_the_customer_reminds_them_and_their_reply_resumes() -> None:
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        received = paris("2032-01-12T09:00:00")  # Monday
        await skip_to(env, received)
        handle = await start(env, queue, opening(received))
        await handle.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))
        await skip_to(env, paris("2032-01-12T10:00:00"))
        view = await handle.execute_update(
            DossierWorkflow.request_information,
            MessageCmd(actor=TECH, text="Quelle version utilisez-vous ?"),
        )
        assert (view.status, view.waiting_for) == ("waiting_customer", "customer")
        assert view.first_responded_at is not None
        assert at_about(view.first_responded_at, paris("2032-01-12T10:00:00"))

        # 16 business hours later (Wednesday 10:00) the customer is reminded, not before
        await skip_to(env, paris("2032-01-14T09:59:00"))
        await settled(handle)
        assert fakes.templates() == ["acknowledgement", "information_request"]
        await skip_to(env, paris("2032-01-14T10:01:00"))
        await settled(handle)
        assert fakes.templates()[-1] == "customer_reminder"
        assert fakes.mails[-1].auto is True
        assert fakes.mails[-1].context["text"] == "Quelle version utilisez-vous ?"
        reminded = fakes.published()[-1]
        assert reminded.type == "dossier.dossier.customer_reminded"
        assert at_about(reminded.occurred_at, paris("2032-01-14T10:00:00"))

        # the technician hears of it only after twice that: Friday 10:00
        await skip_to(env, paris("2032-01-16T09:59:00"))
        await settled(handle)
        assert fakes.notices == []
        await skip_to(env, paris("2032-01-16T11:00:00"))
        await settled(handle)
        assert fakes.notice_kinds() == ["reminder"]
        assert at_about(fakes.notice_times[0], paris("2032-01-16T10:00:00"))
        assert fakes.notices[0].text.endswith("le client n'a toujours pas répondu.")

        # the customer's mail reply resumes the follow-through: Friday 11:00 + 4 h = 16:00
        await handle.signal(
            DossierWorkflow.customer_message,
            CustomerMessage(
                text="Version 5.2.", author_email="claire.martin@dupont-sa.fr", via="mail"
            ),
        )
        await eventually(lambda: "customer_replied" in fakes.notice_kinds())
        view = await handle.query(DossierWorkflow.view)
        assert (view.status, view.waiting_for) == ("in_progress", None)
        assert fakes.notices[-1].text == "Version 5.2."

        # asked again at 11:30, answered on the site at 14:30 (update with a customer actor)
        await skip_to(env, paris("2032-01-16T11:30:00"))
        view = await handle.execute_update(
            DossierWorkflow.request_information,
            MessageCmd(actor=TECH, text="Et le système d'exploitation ?"),
        )
        assert view.status == "waiting_customer"
        await skip_to(env, paris("2032-01-16T14:30:00"))
        view = await handle.execute_update(
            DossierWorkflow.respond, MessageCmd(actor=CUSTOMER, text="Windows 11.")
        )
        assert (view.status, view.waiting_for) == ("in_progress", None)

        # restarted at 14:30: 3 h 30 on Friday, so the reminder is on Monday 09:30 and the
        # escalation 8 business hours later, Tuesday 09:30
        await skip_to(env, paris("2032-01-20T10:00:00"))
        await settled(handle)
        assert fakes.notice_kinds() == [
            "reminder",
            "customer_replied",
            "customer_replied",
            "reminder",
            "escalation",
        ]
        assert at_about(fakes.notice_times[3], paris("2032-01-19T09:30:00"))
        assert at_about(fakes.notice_times[4], paris("2032-01-20T09:30:00"))
        assert all(
            in_business_hours(t)
            for kind, t in fakes.timed_notices()
            if kind in ("reminder", "escalation")
        )
        assert fakes.templates() == [
            "acknowledgement",
            "information_request",
            "customer_reminder",
            "information_request",
        ]
        replies = [
            e.data["timeline"] for e in fakes.published() if e.type.endswith("customer_replied")
        ]
        assert [(r["text"], r["data"]["via"]) for r in replies] == [
            ("Version 5.2.", "mail"),
            ("Windows 11.", "web"),
        ]
