"""The timeline follows the workflow's steps (issue 11 item 4(e)): step 10 never shows before
step 9, whatever their timestamps; intake's `received` entry is step 0; an administrator's
action (no step of its own) comes after the step the dossier was at."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from assistance import db
from assistance.directory import Principal, Role
from assistance.events import Event
from composition.app import migrate
from deploy.local.stack import Endpoints, create_database
from services.dossier import repo
from services.dossier.projection import apply

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
STAFF = Principal(user_id=uuid.uuid4(), role=Role.technician, name="Thomas")


def _step(dossier_id: str, seq: int, at: datetime, text: str, **set_: object) -> Event:
    return Event(
        id=f"{dossier_id}:{seq}",
        type="dossier.dossier.noted",
        occurred_at=at,
        data={
            "dossier_id": dossier_id,
            "seq": seq,
            "set": set_,
            "timeline": {"kind": "note", "visibility": "internal", "text": text},
        },
    )


async def test_timeline_is_ordered_by_step_then_time(endpoints: Endpoints) -> None:
    url = await create_database(endpoints.database_url, f"tl_{uuid.uuid4().hex[:10]}")
    await migrate(url, ["dossier"])
    pool = await db.create_pool(url, 2)
    dossier_id = str(uuid.uuid4())
    opening = {
        "dossier_id": dossier_id,
        "reference": "D-2026-000010",
        "channel": "web",
        "software": "manao-compta",
        "subject": "Ordre",
        "description": "Texte",
        "requester_email": "claire@dupont-sa.fr",
        "requester_name": "Claire",
        "received_at": T0.isoformat(),
        "first_response_due": (T0 + timedelta(hours=4)).isoformat(),
    }
    try:
        async with pool.acquire() as conn:
            await apply(
                conn,
                Event(
                    id=f"{dossier_id}:received",
                    type="intake.request.received",
                    occurred_at=T0 + timedelta(seconds=5),  # intake's clock a little ahead
                    data=opening,
                ),
            )
            await apply(conn, _step(dossier_id, 1, T0, "ouvert", status="new"))
            # step 10 stamped before step 9 (two activities, two clocks): 9 shows first
            await apply(
                conn, _step(dossier_id, 10, T0 + timedelta(minutes=1), "dix", status="in_progress")
            )
            await apply(
                conn, _step(dossier_id, 9, T0 + timedelta(minutes=2), "neuf", status="in_progress")
            )
            await apply(
                conn,
                Event(
                    id=f"{dossier_id}:parked:1:retry",
                    type="dossier.operations.retried",
                    occurred_at=T0 + timedelta(minutes=3),
                    data={
                        "dossier_id": dossier_id,
                        "timeline": {"kind": "operations", "text": "relancé"},
                    },
                ),
            )
            await apply(
                conn, _step(dossier_id, 11, T0 + timedelta(minutes=4), "onze", status="in_progress")
            )
        dossier = await repo.get_dossier(pool, uuid.UUID(dossier_id), STAFF)
        assert dossier is not None
        assert [e.text for e in dossier.timeline] == [
            "Texte",
            "ouvert",
            "neuf",
            "dix",
            "relancé",
            "onze",
        ]
        seqs = await pool.fetch(
            "SELECT seq FROM dossier.timeline WHERE dossier_id = $1 ORDER BY seq, at",
            uuid.UUID(dossier_id),
        )
        assert [r["seq"] for r in seqs] == [0, 1, 9, 10, 10, 11]
    finally:
        await pool.close()
