"""Lifecycle commands with `Idempotency-Key` over the real stack (issue 11 §3, R2, R10):
the key replays the first answer, and is also the Temporal update id, so even a retry whose
first answer was lost acts once; a command the workflow does not answer in time is answered
202 with where to read its outcome, and is never applied behind the client's back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.common import WorkflowIDReusePolicy
from temporalio.worker import Worker

from assistance import db, idempotency
from assistance import temporal as temporal_client
from assistance.directory import Role
from deploy.local.stack import LocalStack
from services.dossier import commands
from tests.helpers import auth, deposit_body, eventually
from workflows.worker import WORKFLOWS, activities


@pytest.fixture
async def pool(system: Any) -> AsyncIterator[asyncpg.Pool]:
    opened = await db.create_pool(system.settings.database_url, 2)
    try:
        yield opened
    finally:
        await opened.close()


async def _opened(http: httpx.AsyncClient, system: Any, email: str) -> str:
    requester = {"email": email, "name": "Claire Martin"}
    r = await http.post("/api/v1/requests", json=deposit_body(requester=requester))
    assert r.status_code == 201, r.text
    dossier_id: str = r.json()["id"]
    staff = auth(system.tokens[Role.technician])

    async def opened() -> bool:
        got = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=staff)
        return got.status_code == 200 and any(e["kind"] == "opened" for e in got.json()["timeline"])

    await eventually(opened, timeout=30)
    return dossier_id


def _mails_containing(stack: LocalStack, address: str, text: str) -> list[Any]:
    found = []
    for caught in stack.mail.messages:
        if address not in caught.rcpt_tos:
            continue
        msg = message_from_bytes(caught.data, policy=default_policy)
        if text in msg.get_body(preferencelist=("plain",)).get_content():
            found.append(msg)
    return found


async def test_the_same_response_twice_with_one_key_is_one_entry_and_one_mail(
    http: httpx.AsyncClient, system: Any, stack: LocalStack, pool: asyncpg.Pool
) -> None:
    email = f"claire-{uuid.uuid4().hex[:8]}@dupont-sa.fr"
    dossier_id = await _opened(http, system, email)
    tech = auth(system.tokens[Role.technician])
    base = f"/api/v1/dossiers/{dossier_id}"
    assert (await http.post(f"{base}/take", headers=tech)).status_code == 200

    text = f"Menu Paramètres > Exports, cochez « FEC » ({uuid.uuid4().hex[:6]})."
    keyed = {**tech, idempotency.HEADER: f"reponse-{uuid.uuid4()}"}
    first = await http.post(f"{base}/responses", headers=keyed, json={"text": text})
    again = await http.post(f"{base}/responses", headers=keyed, json={"text": text})
    assert first.status_code == again.status_code == 200, first.text
    assert idempotency.REPLAYED not in first.headers
    assert again.headers[idempotency.REPLAYED] == "true"
    assert again.json() == first.json()
    other = await http.post(f"{base}/responses", headers=keyed, json={"text": "Autre chose."})
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert other.json()["error"]["field"] == "Idempotency-Key"

    # the first answer lost (say the API process died before storing it): the retry acts
    # again, and Temporal, for which the key is the update id, runs the update once
    await pool.execute("DELETE FROM web.idempotency WHERE key = $1", keyed[idempotency.HEADER])
    lost = await http.post(f"{base}/responses", headers=keyed, json={"text": text})
    assert lost.status_code == 200 and idempotency.REPLAYED not in lost.headers

    diagnosis = {"kind": "usage", "context": "Clôture mensuelle", "need": "Exporter le FEC"}
    assert (await http.post(f"{base}/diagnosis", headers=tech, json=diagnosis)).status_code == 200
    closed = await http.post(
        f"{base}/close", headers=tech, json={"resolution": "Export FEC réactivé."}
    )
    assert closed.status_code == 200, closed.text
    responses = [e for e in closed.json()["timeline"] if e["kind"] == "response"]
    assert [e["text"] for e in responses] == [text]

    async def both_mailed() -> bool:
        closure = _mails_containing(stack, email, "Export FEC réactivé.")
        return bool(closure) and bool(_mails_containing(stack, email, text))

    await eventually(both_mailed, timeout=30)  # the closure comes after the response
    assert len(_mails_containing(stack, email, text)) == 1


async def test_a_command_not_answered_in_time_is_202_then_its_outcome_once(
    http: httpx.AsyncClient,
    system: Any,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dossier's workflow is moved to a task queue no worker polls (as when the worker or
    Temporal is paused): `take` answers 202 with a Location; the same key answers 202 again
    with the same command; once a worker polls, the Location and the key both give the one
    outcome, and the workflow accepted one `take`. A 5xx before that released the key."""
    monkeypatch.setattr(commands, "UPDATE_WAIT_S", 3.0)
    rt = system.app.state.runtime
    client = rt.temporal
    dossier_id = await _opened(http, system, f"claire-{uuid.uuid4().hex[:8]}@dupont-sa.fr")
    tech = auth(system.tokens[Role.technician])
    base = f"/api/v1/dossiers/{dossier_id}"
    keyed = {**tech, idempotency.HEADER: f"prise-{uuid.uuid4()}"}

    handle = client.get_workflow_handle(dossier_id)
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [opening] = await client.data_converter.decode(started.input.payloads)
    await handle.terminate("test: the workflow moves to a task queue without a worker")

    # a command refused with a 5xx (no running workflow) has not acted: the key is free again
    refused = await http.post(f"{base}/take", headers=keyed)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] in ("dossier_opening", "workflow_unavailable")
    stored = await pool.fetchval(
        "SELECT count(*) FROM web.idempotency WHERE key = $1", keyed[idempotency.HEADER]
    )
    assert stored == 0

    paused = f"paused-{uuid.uuid4().hex[:8]}"
    await client.start_workflow(
        "DossierWorkflow",
        opening,
        id=dossier_id,
        task_queue=paused,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    try:
        pending = await http.post(f"{base}/take", headers=keyed)
        assert pending.status_code == 202, pending.text
        command_id = pending.json()["command_id"]
        location = f"{base}/commands/{command_id}"
        assert pending.json() == {
            "status": "pending",
            "command_id": command_id,
            "dossier_id": dossier_id,
            "location": location,
        }
        assert pending.headers["location"] == location
        assert command_id.startswith("k-")
        assert (await http.get(location, headers=tech)).status_code == 202
        unknown = await http.get(f"{base}/commands/k-{'0' * 40}", headers=tech)
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "command_not_found"

        retried = await http.post(f"{base}/take", headers=keyed)
        assert retried.status_code == 202, retried.text
        assert retried.json()["command_id"] == command_id
        assert idempotency.REPLAYED not in retried.headers  # run again, same update

        polling = await temporal_client.connect(
            system.settings.temporal_address, system.settings.temporal_namespace, lazy=False
        )
        async with Worker(
            polling, task_queue=paused, workflows=WORKFLOWS, activities=activities(rt)
        ):

            async def applied() -> httpx.Response | None:
                got = await http.get(location, headers=tech)
                assert got.status_code in (200, 202), got.text
                return got if got.status_code == 200 else None

            outcome = await eventually(applied, timeout=30)
            assert outcome.json()["status"] == "in_progress"
            assert outcome.json()["technician"]["name"] == "Thomas Technicien"

            final = await http.post(f"{base}/take", headers=keyed)
            assert final.status_code == 200, final.text
            assert final.json()["status"] == "in_progress"
            replayed = await http.post(f"{base}/take", headers=keyed)
            assert replayed.headers[idempotency.REPLAYED] == "true"
            assert (replayed.status_code, replayed.json()) == (200, final.json())
            # the run the update went to accepted it once (its read model lags: this test
            # started that run afresh, its early events replay steps the projection has seen)
            events = (await client.get_workflow_handle(dossier_id).fetch_history()).events
            accepted = [
                e.workflow_execution_update_accepted_event_attributes.accepted_request
                for e in events
                if e.HasField("workflow_execution_update_accepted_event_attributes")
            ]
            assert [(a.meta.update_id, a.input.name) for a in accepted] == [(command_id, "take")]
    finally:
        await client.get_workflow_handle(dossier_id).terminate("test done")
