"""A dossier's follow-up that stopped (issue 11 item 6, docs/decisions/0013), on the whole
system with the real Temporal server: a terminated DossierWorkflow is listed in « travail
bloqué »; once repaired, a retry resets it to its last completed workflow task and it answers
the dossier's commands again; a second retry resets nothing (409: it runs); discard
acknowledges a stopped run, which leaves the list. Each action is an internal entry of the
dossier's history."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from assistance import temporal as temporal_client
from assistance.directory import Role
from deploy.local.stack import free_port
from tests.helpers import auth, eventually
from tests.services.site.support import opened_dossier


def _runtime(system: Any) -> Any:
    return system.app.state.runtime


async def _operations(http: httpx.AsyncClient, system: Any, dossier_id: str) -> list[dict]:
    got = await http.get(
        f"/api/v1/dossiers/{dossier_id}", headers=auth(system.tokens[Role.technician])
    )
    assert got.status_code == 200, got.text
    return [e for e in got.json()["timeline"] if e["kind"] == "operations"]


async def _listed(http: httpx.AsyncClient, system: Any, dossier_id: str) -> dict | None:
    got = await http.get("/api/v1/operations/stuck", headers=auth(system.tokens[Role.admin]))
    assert got.status_code == 200, got.text
    assert "temporal" not in got.json()["unavailable"]
    return next((w for w in got.json()["workflows_failed"] if w["workflow_id"] == dossier_id), None)


async def _terminated(http: httpx.AsyncClient, system: Any, subject: str) -> tuple[str, str]:
    """A dossier whose follow-up was terminated by hand; (dossier id, stopped run id)."""
    dossier = await opened_dossier(http, system, subject=subject)
    temporal: Client = _runtime(system).temporal
    handle = temporal.get_workflow_handle(dossier["id"])
    await handle.terminate(reason="arrêt pour le test")
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.TERMINATED
    return dossier["id"], described.run_id


async def test_a_terminated_follow_up_is_listed_retried_once_and_answers_again(
    http: httpx.AsyncClient, system: Any
) -> None:
    admin = auth(system.tokens[Role.admin])
    tech = auth(system.tokens[Role.technician])
    temporal: Client = _runtime(system).temporal
    dossier_id, stopped_run = await _terminated(http, system, "Suivi arrêté puis relancé")

    async def listed() -> dict | None:
        return await _listed(http, system, dossier_id)

    row = await eventually(listed, timeout=30)
    assert row["label"] == "Suivi de dossier arrêté"
    assert row["status"] == "arrêté"
    assert row["run_id"] == stopped_run
    assert row["dossier_id"] == dossier_id
    url = f"/api/v1/operations/workflows/{dossier_id}/retry"
    assert (await http.post(url, headers=tech)).status_code == 403
    # two administrators at once: one reset, the other finds the follow-up running again
    key = {"Idempotency-Key": f"retry-{dossier_id}"}
    first, twin = await asyncio.gather(
        http.post(url, headers={**admin, **key}), http.post(url, headers=admin)
    )
    assert sorted([first.status_code, twin.status_code]) == [200, 409], (first.text, twin.text)
    if first.status_code != 200:  # the twin went first: replay it under the key below
        first, twin = twin, first
        key = {}
    assert twin.json()["error"]["code"] == "workflow_not_stopped"
    done = first.json()
    assert done["state"] == "retried"
    assert done["run_id"] == stopped_run
    assert done["new_run_id"] and done["new_run_id"] != stopped_run
    assert done["dossier_id"] == dossier_id
    assert done["acted_by"]

    # the new run is the workflow's, running, reset to the stopped run's last completed task
    described = await temporal.get_workflow_handle(dossier_id).describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    assert described.run_id == done["new_run_id"]
    reset_to = [
        e
        async for e in temporal.get_workflow_handle(
            dossier_id, run_id=done["new_run_id"]
        ).fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]
    assert reset_to and reset_to[-1].workflow_task_failed_event_attributes.new_run_id

    # it answers the dossier's commands again: a technician takes it
    took = await http.post(f"/api/v1/dossiers/{dossier_id}/take", headers=tech)
    assert took.status_code == 200, took.text
    assert took.json()["technician"]

    # the same key replays the first answer; without it, a second retry resets nothing: 409
    if key:
        replayed = await http.post(url, headers={**admin, **key})
        assert replayed.status_code == 200
        assert replayed.headers.get("Idempotent-Replayed") == "true"
        assert replayed.json() == done
    again = await http.post(url, headers=admin)
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "workflow_not_stopped"
    assert again.json()["error"]["message"] == "Ce suivi n'est pas arrêté : rien à relancer."
    assert (await temporal.get_workflow_handle(dossier_id).describe()).run_id == done["new_run_id"]
    refused = await http.post(f"/api/v1/operations/workflows/{dossier_id}/discard", headers=admin)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "workflow_not_stopped"

    # recorded once in the dossier's history, internal, naming the administrator
    async def recorded() -> list[dict] | None:
        return await _operations(http, system, dossier_id) or None

    entries = await eventually(recorded, timeout=30)
    assert len(entries) == 1
    assert entries[0]["visibility"] == "internal"
    assert entries[0]["text"] == (
        f"Suivi du dossier relancé par {done['acted_by']} après réparation (il avait été arrêté)."
    )
    assert await _listed(http, system, dossier_id) is None

    # the dossier's query answers from the new run
    view = await temporal.get_workflow_handle(dossier_id).query("view")
    assert view is not None


async def test_a_stopped_follow_up_marked_as_handled_leaves_the_list(
    http: httpx.AsyncClient, system: Any
) -> None:
    admin = auth(system.tokens[Role.admin])
    temporal: Client = _runtime(system).temporal
    dossier_id, stopped_run = await _terminated(http, system, "Suivi arrêté puis traité")

    async def listed() -> dict | None:
        return await _listed(http, system, dossier_id)

    await eventually(listed, timeout=30)
    url = f"/api/v1/operations/workflows/{dossier_id}/discard"
    first = await http.post(url, headers=admin)
    assert first.status_code == 200, first.text
    assert first.json()["state"] == "discarded"
    assert first.json()["run_id"] == stopped_run
    assert first.json()["new_run_id"] is None
    assert await _listed(http, system, dossier_id) is None  # at once: no visibility lag
    again = await http.post(url, headers=admin)
    assert again.status_code == 200
    assert again.json() == first.json()
    # discarded: it stays stopped, and is not retried any more
    assert (
        await temporal.get_workflow_handle(dossier_id).describe()
    ).status == WorkflowExecutionStatus.TERMINATED
    retried = await http.post(f"/api/v1/operations/workflows/{dossier_id}/retry", headers=admin)
    assert retried.status_code == 409
    assert retried.json()["error"]["code"] == "workflow_already_handled"

    async def recorded() -> list[dict] | None:
        return await _operations(http, system, dossier_id) or None

    entries = await eventually(recorded, timeout=30)
    assert len(entries) == 1
    assert entries[0]["text"] == (
        f"Arrêt du suivi du dossier marqué comme traité par {first.json()['acted_by']} "
        "(il avait été arrêté) : le suivi reste arrêté."
    )


async def test_refusals_unknown_running_and_temporal_away(
    http: httpx.AsyncClient, system: Any
) -> None:
    admin = auth(system.tokens[Role.admin])
    unknown = await http.post("/api/v1/operations/workflows/inconnu-1/retry", headers=admin)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "Suivi introuvable."
    invalid = await http.post("/api/v1/operations/workflows/%20x/discard", headers=admin)
    assert invalid.status_code == 422

    running = await opened_dossier(http, system, subject="Suivi qui tourne")
    got = await http.post(f"/api/v1/operations/workflows/{running['id']}/retry", headers=admin)
    assert got.status_code == 409
    assert got.json()["error"]["message"] == "Ce suivi n'est pas arrêté : rien à relancer."
    got = await http.post(f"/api/v1/operations/workflows/{running['id']}/discard", headers=admin)
    assert got.status_code == 409
    assert got.json()["error"]["message"] == (
        "Ce suivi n'est pas arrêté : rien à marquer comme traité."
    )

    # Temporal away: a real client of an address where nothing listens
    rt = _runtime(system)
    away = await temporal_client.connect(f"127.0.0.1:{free_port()}", lazy=True)
    kept, rt.temporal = rt.temporal, away
    try:
        got = await http.post(
            f"/api/v1/operations/workflows/{running['id']}/retry",
            headers=admin,
            timeout=60,
        )
        assert got.status_code == 503, got.text
        assert got.json()["error"]["message"] == "Temporal est indisponible, réessayez."
        view = await http.get("/api/v1/operations/stuck", headers=admin, timeout=60)
        assert view.status_code == 200
        assert "temporal" in view.json()["unavailable"]
    finally:
        rt.temporal = kept
