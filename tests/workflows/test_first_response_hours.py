"""R3 with `FIRST_RESPONSE_HOURS=2`: every timer and every text follows the one commitment.

Intake's due time, the workflow's warning (at 75 % of 2 business hours) and breach, the
notices and their mails, the acknowledgement mail, the site's home page and dashboard promise,
and the API description: none of them may still say 4 hours.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from html import unescape

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import WorkflowHandle

from assistance.app import api_description
from assistance.commitment import CLOCK_STOPPERS
from assistance.settings import Settings
from services.dossier.mail import render, render_notice
from services.intake import domain as intake
from services.site import main as site
from tests.workflows.harness import (
    TECH,
    Fakes,
    at_about,
    opening,
    paris,
    running_worker,
    settled,
    skip_to,
    start,
    time_skipping,
)
from workflows.dossier import DossierWorkflow
from workflows.types import (
    ActorCmd,
    DiagnosisCmd,
    DossierPolicy,
    MessageCmd,
    ScreenShareCmd,
    WorkaroundCmd,
)

TWO_HOURS = Settings(first_response_hours=2)


def _text(message) -> str:  # type: ignore[no-untyped-def]
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def test_two_hour_commitment_through_intake_and_the_workflow() -> None:
    fakes = Fakes()
    # Friday 17:30: 30 min on Friday, then 1 h 30 on Monday morning.
    received = paris("2032-12-03T17:30:00")
    due = intake.first_response_due(
        TWO_HOURS.calendar(), received, TWO_HOURS.first_response_hours
    )  # the call intake makes for web, mail and phone deposits
    assert due.isoformat() == "2032-12-06T10:30:00+01:00"
    policy = DossierPolicy(**TWO_HOURS.dossier_policy())  # type: ignore[arg-type]
    assert (policy.first_response_hours, policy.warning_fraction) == (2.0, 0.75)
    o = replace(opening(received, policy=policy), first_response_due=due)
    warn_at = paris("2032-12-06T10:00:00")  # 75 % of 2 h = 1 h 30 of open time

    async with time_skipping() as env, running_worker(env, fakes) as queue:
        await skip_to(env, received)
        handle = await start(env, queue, o)
        await settled(handle)
        opened = fakes.published()[0].data
        assert opened["set"]["first_response_due"] == "2032-12-06T10:30:00+01:00"
        assert opened["timeline"]["text"] == (
            "Dossier ouvert ; première réponse garantie avant le lundi 06/12/2032 à 10:30."
        )
        [ack] = fakes.mails
        assert ack.template == "acknowledgement"
        assert ack.context["first_response_delay"] == "2 heures ouvrées"
        ack_text = _text(render(ack, TWO_HOURS))
        assert (
            "Un technicien vous répondra au plus tard le lundi 6 décembre 2032 à 10:30 "
            "(heure de Paris)." in ack_text
        )
        assert "nous nous engageons à vous répondre sous 2 heures ouvrées." in ack_text
        assert "4 heures" not in ack_text
        # an order without the delay (a dossier opened before it was carried) reads the settings
        dropped = ("first_response_delay", "first_response_due")
        older = replace(ack, context={k: v for k, v in ack.context.items() if k not in dropped})
        assert "dans un délai de 2 heures ouvrées." in _text(render(older, TWO_HOURS))

        await skip_to(env, warn_at - timedelta(minutes=1))
        await settled(handle)
        assert fakes.notices == []

        await skip_to(env, datetime.fromisoformat("2032-12-06T11:00:00+01:00"))
        await settled(handle)
        assert fakes.notice_kinds() == ["first_response_warning", "first_response_breach"]
        sent_warning, sent_breach = fakes.notice_times
        assert at_about(sent_warning, warn_at)
        assert at_about(sent_breach, due)
        warning, breach = fakes.notices
        assert warning.subject == "Première réponse attendue avant le lundi 06/12/2032 à 10:30"
        assert warning.text == (
            "Le dossier D-2026-000042 n'a pas encore reçu de première réponse ; "
            "l'engagement de 2 heures ouvrées expire le lundi 06/12/2032 à 10:30."
        )
        assert breach.subject == "Engagement de première réponse dépassé : D-2026-000042"
        assert breach.text == (
            "Le dossier D-2026-000042 (manao-compta) n'a pas reçu de réponse dans les "
            "2 heures ouvrées (échéance lundi 06/12/2032 à 10:30)."
        )
        timeline = [e.data["timeline"]["text"] for e in fakes.published()[1:]]
        assert timeline == [
            "Alerte : 75 % du délai de première réponse écoulé.",
            "Engagement de première réponse dépassé.",
        ]
        notice_mail = _text(render_notice(warning, "thomas@manao.eu", TWO_HOURS))
        assert "l'engagement de 2 heures ouvrées expire le lundi 06/12/2032 à 10:30." in (
            notice_mail
        )
        view = await handle.query(DossierWorkflow.view)
        assert view.first_response_due == due
        assert view.first_responded_at is None


async def test_a_one_and_a_half_hour_commitment_warned_at_half_time() -> None:
    """Any budget and fraction: 1 h 30, warned at 50 % (45 min), worded in natural French."""
    settings = Settings(first_response_hours=1.5, first_response_warning_fraction=0.5)
    fakes = Fakes()
    received = paris("2032-12-06T09:00:00")  # Monday, open
    due = intake.first_response_due(settings.calendar(), received, settings.first_response_hours)
    assert due == paris("2032-12-06T10:30:00")
    policy = DossierPolicy(**settings.dossier_policy())  # type: ignore[arg-type]
    o = replace(opening(received, policy=policy), first_response_due=due)
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        await skip_to(env, received)
        handle = await start(env, queue, o)
        await skip_to(env, paris("2032-12-06T10:45:00"))
        await settled(handle)
        assert fakes.mails[0].context["first_response_delay"] == "1 h 30 ouvrées"
        sent_warning, sent_breach = fakes.notice_times
        assert at_about(sent_warning, paris("2032-12-06T09:45:00"))
        assert at_about(sent_breach, due)
        assert "l'engagement de 1 h 30 ouvrées expire" in fakes.notices[0].text
        assert fakes.published()[1].data["timeline"]["text"] == (
            "Alerte : 50 % du délai de première réponse écoulé."
        )


async def test_site_and_api_description_promise_two_hours() -> None:
    """The home page's engagement and the OpenAPI description are built from the settings.

    The site's router alone, on an app holding these settings (the home page calls no
    service); `create_app` would also install the process's tracing, once per process."""
    app = FastAPI()
    app.state.settings, app.state.calendar = TWO_HOURS, TWO_HOURS.calendar()
    app.include_router(site.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://site.test") as web:
        home = await web.get("/")
    assert home.status_code == 200
    html = unescape(home.text)
    assert "Le centre de service répond à toutes les demandes sous 2 heures." in html
    assert "4 heures" not in html
    description = api_description(TWO_HOURS)
    assert "un engagement de première réponse sous 2 heures ouvrées (R3)." in description
    assert "4 heures" not in description
    assert "sous 4 heures ouvrées (R3)." in api_description(Settings())


async def _take(h: WorkflowHandle) -> None:
    await h.execute_update(DossierWorkflow.take, ActorCmd(actor=TECH))


async def _diagnose(h: WorkflowHandle, kind: str) -> None:
    await h.execute_update(
        DossierWorkflow.diagnose,
        DiagnosisCmd(actor=TECH, kind=kind, context="Clôture mensuelle", need="Exporter le FEC"),
    )


async def _respond(h: WorkflowHandle) -> None:
    await h.execute_update(DossierWorkflow.respond, MessageCmd(actor=TECH, text="Bonjour."))


async def _request_information(h: WorkflowHandle) -> None:
    await h.execute_update(
        DossierWorkflow.request_information, MessageCmd(actor=TECH, text="Quelle version ?")
    )


async def _screen_share(h: WorkflowHandle) -> None:
    await h.execute_update(
        DossierWorkflow.screen_share, ScreenShareCmd(actor=TECH, link="https://partage.test/1")
    )


async def _workaround(h: WorkflowHandle) -> None:
    await _diagnose(h, "bug")
    await h.execute_update(
        DossierWorkflow.record_workaround, WorkaroundCmd(actor=TECH, text="Exporter par mois.")
    )


async def _handover_answer(h: WorkflowHandle) -> None:
    await _diagnose(h, "advanced_usage")


async def _nothing_that_answers(h: WorkflowHandle) -> None:
    await h.execute_update(DossierWorkflow.note, MessageCmd(actor=TECH, text="Vu."))
    await _diagnose(h, "usage")


STOPPERS: dict[str, Callable[[WorkflowHandle], Awaitable[None]]] = {
    "response": _respond,
    "information_request": _request_information,
    "screen_share": _screen_share,
    "workaround": _workaround,
    "handover_answer": _handover_answer,
}


def test_every_declared_clock_stopper_is_driven_below() -> None:
    assert set(STOPPERS) == CLOCK_STOPPERS


@pytest.mark.parametrize("kind", [*sorted(STOPPERS), None])
async def test_what_stops_the_clock(kind: str | None) -> None:
    """R3: each fact of CLOCK_STOPPERS is a first response; taking, noting, classifying are
    not (then the warning still goes out)."""
    fakes = Fakes()
    received = paris("2032-12-06T09:00:00")  # Monday, open
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        await skip_to(env, received)
        handle = await start(env, queue, opening(received))
        await skip_to(env, paris("2032-12-06T10:00:00"))
        await _take(handle)
        await (STOPPERS[kind] if kind else _nothing_that_answers)(handle)
        view = await handle.query(DossierWorkflow.view)
        if kind is None:
            assert view.first_responded_at is None
        else:
            assert view.first_responded_at is not None
            assert at_about(view.first_responded_at, paris("2032-12-06T10:00:00"))
        await skip_to(env, paris("2032-12-06T12:30:00"))  # the warning was due at 12:00
        await settled(handle)
        warned = "first_response_warning" in fakes.notice_kinds()
        assert warned is (kind is None)
