"""Dossiers driven through their lifecycle by well-behaved clients, and every 201 accounted for
afterwards: shared by the fault test (tests/test_fault_tolerance.py) and the cluster test
(tests/cluster/test_cluster.py), which kill parts of the system while the dossiers go through.

Clients behave as they should: every write carries an Idempotency-Key and is retried with the
same key after a 5xx, a timeout or a lost connection (deposits: intake's key; commands: the
Temporal update id derived from it, services/dossier/api.py).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import httpx

from assistance import db
from assistance import temporal as temporal_client
from assistance.directory import Role
from deploy.local.stack import CaughtMail
from tests.helpers import auth, deposit_body
from workflows.dossier import DossierWorkflow

REQUEST_TIMEOUT_S = 20.0
LIVENESS_S = 240.0  # bounds on waits for things to happen at all, never speed checks
CUSTOMER = "claire.martin@dupont-sa.fr"  # deposit_body's requester
MAILS_PER_DOSSIER = ("acknowledgement", "response", "closure")


async def write(
    http: httpx.AsyncClient, path: str, token: str | None, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST with an Idempotency-Key, retried with the same key after a 5xx, a timeout or a
    lost connection, and while the answer says to come back (202: the command's outcome is
    pending; 409 `idempotency_in_flight`: the first attempt still runs); another 4xx is an
    answer (and fails the test)."""
    key = str(uuid.uuid4())
    headers = {"Idempotency-Key": key, **(auth(token) if token else {})}
    deadline = time.monotonic() + LIVENESS_S
    last = ""
    while time.monotonic() < deadline:
        try:
            r = await http.post(path, json=body or {}, headers=headers, timeout=REQUEST_TIMEOUT_S)
        except httpx.TransportError as error:  # refused, reset, timed out
            last = repr(error)
        else:
            if r.status_code < 500 and not _come_back(r):
                assert r.status_code in (200, 201), f"{path}: {r.status_code} {r.text}"
                return r.json()  # type: ignore[no-any-return]
            last = f"{r.status_code} {r.text[:200]}"
        await asyncio.sleep(0.5 + random.random())
    raise AssertionError(f"{path}: no answer within {LIVENESS_S} s (last: {last})")


def _come_back(r: httpx.Response) -> bool:
    if r.status_code == 202:
        return True
    return r.status_code == 409 and r.json()["error"]["code"] == "idempotency_in_flight"


async def until(probe: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Poll `probe` (errors count as "not yet") until it returns something truthy."""
    deadline = time.monotonic() + LIVENESS_S
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await probe()
        except (httpx.HTTPError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what}: still not true after {LIVENESS_S} s (last: {last!r})")


async def lifecycle(http: httpx.AsyncClient, tokens: dict[Role, str], n: int) -> dict[str, Any]:
    """One customer's request, followed by one technician to its closure: deposit → take →
    diagnose (usage) → respond → close. The deposit's 201 body."""
    tech = tokens[Role.technician]
    opened = await write(
        http, "/api/v1/requests", None, deposit_body(subject=f"Export FEC bloqué n°{n}")
    )
    base = f"/api/v1/dossiers/{opened['id']}"

    async def readable() -> bool:
        r = await http.get(base, headers=auth(tech), timeout=REQUEST_TIMEOUT_S)
        return r.status_code == 200

    await until(readable, f"dossier {opened['reference']} readable")
    await write(http, f"{base}/take", tech)
    await write(
        http,
        f"{base}/diagnosis",
        tech,
        {"kind": "usage", "context": "Clôture mensuelle", "need": "Exporter le FEC"},
    )
    await write(http, f"{base}/responses", tech, {"text": f"Cochez « à-nouveaux » ({n})."})
    await write(http, f"{base}/close", tech, {"resolution": f"Paramètre d'export corrigé ({n})."})
    return opened


async def account_for(
    accepted: Sequence[dict[str, Any]],
    *,
    database_url: str,
    temporal_address: str,
    mails: Callable[[], list[CaughtMail]],
) -> None:
    """Every 201 became one dossier, one workflow, closed (in the read model and in the
    workflow), with no timeline entry twice; each customer got one acknowledgement, one
    response and one closure, each mail once; every outgoing mail row is `sent`; nothing is
    parked. `mails()`: what the SMTP server caught so far."""
    ids = {uuid.UUID(d["id"]) for d in accepted}
    references = {d["reference"] for d in accepted}
    count = len(accepted)
    assert len(ids) == len(references) == count

    pool = await db.create_pool(database_url, 2)
    try:

        async def all_closed() -> bool:
            rows = await pool.fetch("SELECT id, status FROM dossier.dossiers")
            return {r["id"] for r in rows} == ids and {r["status"] for r in rows} == {"closed"}

        await until(all_closed, "every dossier closed in the read model")
        assert await pool.fetchval("SELECT count(*) FROM intake.requests") == count
        twice = await pool.fetch(
            """SELECT dossier_id, kind, text, count(*) FROM dossier.timeline
               GROUP BY dossier_id, kind, text HAVING count(*) > 1"""
        )
        assert twice == []
        kinds = Counter(r["kind"] for r in await pool.fetch("SELECT kind FROM dossier.timeline"))
        for kind in ("received", "opened", "closed"):
            assert kinds[kind] == count, kinds

        def to_customers() -> list[Any]:
            return [m.message() for m in mails() if CUSTOMER in m.rcpt_tos]

        async def every_mail_arrived() -> bool:
            return len(to_customers()) >= len(MAILS_PER_DOSSIER) * count

        await until(every_mail_arrived, "three mails per dossier")
        await asyncio.sleep(2)  # a duplicate would have arrived by now
        caught = to_customers()
        per_id = Counter(str(m["Message-ID"]) for m in caught)
        assert [mid for mid, n in per_id.items() if n > 1] == []
        per_dossier = Counter(
            next(ref for ref in references if f"[{ref}]" in str(m["Subject"])) for m in caught
        )
        assert set(per_dossier.values()) == {len(MAILS_PER_DOSSIER)}, per_dossier
        templates = Counter(
            r["template"]
            for r in await pool.fetch(
                "SELECT template FROM dossier.outbound_mail WHERE state = 'sent'"
            )
        )
        assert {t: templates[t] for t in MAILS_PER_DOSSIER} == dict.fromkeys(
            MAILS_PER_DOSSIER, count
        )
        assert (
            await pool.fetchval("SELECT count(*) FROM dossier.outbound_mail WHERE state <> 'sent'")
            == 0
        )

        # nothing parked
        assert await pool.fetch("SELECT source, name, subject, error FROM bus.parked") == []
        assert await pool.fetchval("SELECT count(*) FROM bus.outbox WHERE status = 'parked'") == 0
    finally:
        await pool.close()

    # one workflow per dossier, and each says the dossier is closed
    temporal = await temporal_client.connect(temporal_address, lazy=False)
    workflows = [w async for w in temporal.list_workflows("WorkflowType = 'DossierWorkflow'")]
    assert sorted(w.id for w in workflows) == sorted(str(i) for i in ids)
    for dossier_id in ids:
        view = await temporal.get_workflow_handle(str(dossier_id)).query(DossierWorkflow.view)
        assert view.status == "closed", view
