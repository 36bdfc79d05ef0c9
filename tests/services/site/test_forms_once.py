"""A form of the site is one effect however often it is sent (a double click, the browser
sending it again, a reload after a lost answer): every form carries the key of its rendering,
`envoi`, which the site sends as `Idempotency-Key`; the files sent with it are stored once.
A command the dossier's workflow has not applied yet (202) is not shown as done
(docs/decisions/0012)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import message_from_bytes
from email.policy import default as default_policy
from html import unescape
from typing import Any

import httpx
import pytest
from temporalio.common import WorkflowIDReusePolicy

from assistance import db
from assistance.directory import Role
from deploy.local.stack import LocalStack
from services.dossier import commands
from tests.helpers import auth, eventually
from tests.services.site.support import EMAIL_OF, csrf_of, opened_dossier

PENDING = "Votre action est bien reçue ; le dossier la prendra en compte dans un instant."


@asynccontextmanager
async def _as(system: Any, role: Role) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system.base_url, timeout=60) as web:
        token = csrf_of((await web.get("/connexion")).text)
        r = await web.post(
            "/connexion",
            data={"csrf": token, "email": EMAIL_OF[role], "token": system.tokens[role]},
        )
        assert r.status_code == 303, r.text
        yield web


def _form(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to `action`, as the browser would send them."""
    found = re.search(rf'<form [^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S)
    assert found, action
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', found[1]))


def _mails_to(stack: LocalStack, address: str, text: str) -> int:
    found = 0
    for caught in stack.mail.messages:
        if address in caught.rcpt_tos:
            msg = message_from_bytes(caught.data, policy=default_policy)
            found += text in msg.get_body(preferencelist=("plain",)).get_content()
    return found


async def _attachments(system: Any, dossier_id: str) -> list[str]:
    pool = await db.create_pool(system.settings.database_url, 1)
    try:
        rows = await pool.fetch(
            "SELECT filename FROM site.attachments WHERE dossier_id = $1", uuid.UUID(dossier_id)
        )
    finally:
        await pool.close()
    return [r["filename"] for r in rows]


async def test_every_form_carries_a_fresh_submission_key(system, http: httpx.AsyncClient) -> None:
    dossier = await opened_dossier(http, system, subject="Deux rendus, deux clés")
    async with _as(system, Role.technician) as web:
        path = f"/bureau/dossiers/{dossier['id']}"
        first, again = (await web.get(path)).text, (await web.get(path)).text
    take = f"{path}/prendre"
    keys = {_form(first, take)["envoi"], _form(again, take)["envoi"]}
    assert len(keys) == 2 and all(re.fullmatch(r"[A-Za-z0-9_-]{22}", k) for k in keys)
    # each form of the page has its own
    envois = re.findall(r'name="envoi" value="([^"]+)"', first)
    assert len(envois) >= 2 and len(set(envois)) == len(envois)


async def test_an_office_answer_sent_twice_is_one_entry_one_mail_and_one_file(
    system, http: httpx.AsyncClient, stack: LocalStack
) -> None:
    """A double click: the two posts of the same form run at once; the second waits for the
    first and replays its answer."""
    email = f"claire-{uuid.uuid4().hex[:8]}@dupont-sa.fr"
    dossier = await opened_dossier(
        http, system, requester={"email": email, "name": "Claire Martin"}, subject="Deux clics"
    )
    tech = auth(system.tokens[Role.technician])
    base = f"/api/v1/dossiers/{dossier['id']}"
    assert (await http.post(f"{base}/take", headers=tech)).status_code == 200
    text = f"Menu Paramètres > Exports, cochez « FEC » ({uuid.uuid4().hex[:6]})."
    action = f"/bureau/dossiers/{dossier['id']}/repondre"
    async with _as(system, Role.technician) as web:
        form = _form((await web.get(f"/bureau/dossiers/{dossier['id']}")).text, action)
        assert set(form) == {"csrf", "envoi"}

        async def send() -> httpx.Response:
            return await web.post(
                action,
                data={**form, "text": text},
                files={"files": ("export.txt", b"FEC 2026", "text/plain")},
            )

        sent = await asyncio.gather(send(), send())
        assert [r.status_code for r in sent] == [303, 303]
        page = unescape((await web.get(f"/bureau/dossiers/{dossier['id']}")).text)
    assert "Réponse envoyée au client." in page

    diagnosis = {"kind": "usage", "context": "Clôture mensuelle", "need": "Exporter le FEC"}
    assert (await http.post(f"{base}/diagnosis", headers=tech, json=diagnosis)).status_code == 200
    closed = await http.post(f"{base}/close", headers=tech, json={"resolution": "FEC réactivé."})
    assert closed.status_code == 200, closed.text
    responses = [e for e in closed.json()["timeline"] if e["kind"] == "response"]
    assert [e["text"] for e in responses] == [text]
    assert await _attachments(system, dossier["id"]) == ["export.txt"]

    async def both_mailed() -> bool:  # the closure's mail comes after the response's
        return bool(_mails_to(stack, email, "FEC réactivé.") and _mails_to(stack, email, text))

    await eventually(both_mailed, timeout=30)
    assert _mails_to(stack, email, text) == 1


async def test_a_customer_reply_sent_again_stores_its_file_once(
    system, http: httpx.AsyncClient
) -> None:
    """The browser sends the same reply again (a reload after a lost answer): one message in
    the history, one copy of its file; the same file in a new reply is stored again."""
    dossier = await opened_dossier(http, system, subject="Réponse envoyée deux fois")
    text = f"Voici la capture demandée ({uuid.uuid4().hex[:6]})."
    action = f"/espace/dossiers/{dossier['id']}/repondre"
    capture = ("capture.png", b"\x89PNG capture", "image/png")
    async with _as(system, Role.customer) as web:
        form = _form((await web.get(f"/espace/dossiers/{dossier['id']}")).text, action)
        for _ in range(2):
            sent = await web.post(action, data={**form, "text": text}, files={"files": capture})
            assert sent.status_code == 303, sent.text
            page = unescape((await web.get(f"/espace/dossiers/{dossier['id']}")).text)
            assert "Votre message est transmis à votre technicien." in page
        assert await _attachments(system, dossier["id"]) == ["capture.png"]

        form = _form((await web.get(f"/espace/dossiers/{dossier['id']}")).text, action)
        sent = await web.post(
            action, data={**form, "text": "La même, encore."}, files={"files": capture}
        )
        assert sent.status_code == 303
    assert await _attachments(system, dossier["id"]) == ["capture.png", "capture.png"]
    got = await http.get(
        f"/api/v1/dossiers/{dossier['id']}", headers=auth(system.tokens[Role.technician])
    )
    assert [e["text"] for e in got.json()["timeline"]].count(text) == 1


async def test_a_command_not_applied_yet_is_said_received_not_done(
    system, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dossier's workflow is moved to a task queue no worker polls (as while the worker or
    Temporal is paused): the dossier API answers 202, and the site says the action is
    received, not « Vous suivez désormais ce dossier. »"""
    monkeypatch.setattr(commands, "UPDATE_WAIT_S", 3.0)
    client = system.app.state.runtime.temporal
    dossier = await opened_dossier(http, system, subject="Travail en pause")
    handle = client.get_workflow_handle(dossier["id"])
    started = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
    [opening] = await client.data_converter.decode(started.input.payloads)
    await handle.terminate("test: the workflow moves to a task queue without a worker")
    await client.start_workflow(
        "DossierWorkflow",
        opening,
        id=dossier["id"],
        task_queue=f"paused-{uuid.uuid4().hex[:8]}",
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    try:
        path = f"/bureau/dossiers/{dossier['id']}"
        async with _as(system, Role.technician) as web:
            form = _form((await web.get(path)).text, f"{path}/prendre")
            sent = await web.post(f"{path}/prendre", data=form)
            assert sent.status_code == 303 and sent.headers["location"] == path
            page = unescape((await web.get(path)).text)
    finally:
        await client.get_workflow_handle(dossier["id"]).terminate("test done")
    assert f'<div class="flash info" role="status">{PENDING}</div>' in page
    assert "Vous suivez désormais ce dossier." not in page
