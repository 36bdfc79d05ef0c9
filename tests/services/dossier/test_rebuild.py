"""`assistance rebuild` (issue 11 item 5): the dossier read model rebuilt from the event
streams, one dossier or all, agrees with the workflow's own state (its `view` query) and with
the read model the live projection had built; the timeline follows the workflow's steps."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from assistance import db
from assistance import temporal as temporal_client
from assistance.bus import Bus
from assistance.directory import Role
from services.dossier.rebuild import rebuild
from tests.helpers import auth, deposit_body, eventually
from workflows.dossier import DossierWorkflow

FIELDS = (
    "status",
    "kind",
    "technician_id",
    "first_responded_at",
    "closed_at",
    "resolution",
    "last_seq",
)


async def _read_model(pool: asyncpg.Pool, ids: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dossier_id in ids:
        row = await pool.fetchrow(
            f"SELECT {', '.join(FIELDS)} FROM dossier.dossiers WHERE id = $1",
            uuid.UUID(dossier_id),
        )
        timeline = await pool.fetch(
            """SELECT seq, event_id, kind, text FROM dossier.timeline WHERE dossier_id = $1
               ORDER BY seq, at, event_id""",
            uuid.UUID(dossier_id),
        )
        out[dossier_id] = (dict(row) if row else None, [tuple(t) for t in timeline])
    return out


async def test_rebuild_agrees_with_the_workflows_and_the_live_projection(
    http: httpx.AsyncClient, system: Any
) -> None:
    tech = auth(system.tokens[Role.technician])
    ids = []
    for i in range(3):
        r = await http.post("/api/v1/requests", json=deposit_body(subject=f"Reconstruction {i}"))
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    client = await temporal_client.connect(system.settings.temporal_address)

    async def running(dossier_id: str) -> bool:
        try:
            await client.get_workflow_handle(dossier_id).query(DossierWorkflow.view)
        except Exception:  # noqa: BLE001 - not started yet
            return False
        return True

    for dossier_id in ids:
        await eventually(lambda d=dossier_id: running(d), timeout=60)
    first, second, _third = (f"/api/v1/dossiers/{d}" for d in ids)
    assert (await http.post(f"{first}/take", headers=tech)).status_code == 200
    assert (
        await http.post(f"{first}/responses", headers=tech, json={"text": "Réponse."})
    ).status_code == 200
    assert (await http.post(f"{second}/take", headers=tech)).status_code == 200
    diagnosis = {"kind": "usage", "context": "Cabinet", "need": "Exporter"}
    assert (await http.post(f"{second}/diagnosis", headers=tech, json=diagnosis)).status_code == 200
    assert (
        await http.post(f"{second}/close", headers=tech, json={"resolution": "Réglé."})
    ).status_code == 200

    pool = await db.create_pool(system.settings.database_url, 2)
    bus = Bus(system.settings.nats_url, name="test-rebuild")
    await bus.connect()
    try:

        async def agrees() -> dict[str, Any] | None:
            model = await _read_model(pool, ids)
            for dossier_id in ids:
                view = await client.get_workflow_handle(dossier_id).query(DossierWorkflow.view)
                row, timeline = model[dossier_id]
                if row is None or row["last_seq"] != view.seq:
                    return None
                if [t[0] for t in timeline][-1] != view.seq:
                    return None
                assert (row["status"], row["kind"], row["resolution"]) == (
                    view.status,
                    view.kind,
                    view.resolution,
                )
                assert (str(row["technician_id"]) if row["technician_id"] else None) == (
                    view.technician_id
                )
                assert row["closed_at"] == view.closed_at
                assert row["first_responded_at"] == view.first_responded_at
                # the timeline follows the workflow's steps: intake's entry is 0, then 1, 2…
                seqs = [t[0] for t in timeline]
                assert seqs == sorted(seqs) and seqs[0] == 0 and seqs[1] == 1
            return model

        live = await eventually(agrees, timeout=60)
        statuses = [live[d][0]["status"] for d in ids]
        assert statuses == ["in_progress", "closed", "new"]

        one = await rebuild(pool, bus, uuid.UUID(ids[0]))
        assert one.dossiers == 1
        assert one.events == len(live[ids[0]][1])  # here every event has a timeline entry
        assert await _read_model(pool, ids) == live

        everything = await rebuild(pool, bus)
        assert everything.dossiers >= 3
        assert await _read_model(pool, ids) == live
        assert await agrees() == live
    finally:
        await bus.close()
        await pool.close()
