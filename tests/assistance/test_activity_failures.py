"""The failure policy for activities, on the real Temporal and PostgreSQL of the test stack
(docs/decisions/0013): an outage is waited for inside the attempt (Temporal counts one
attempt), an activity failing again and again is listed for the « travail bloqué » view,
and one failing for good is parked with its arguments."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import asyncpg
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.worker import Worker

from assistance import db
from assistance import temporal as temporal_client
from assistance.activity_failures import ActivityFailures
from assistance.failures import FailurePolicy
from deploy.local.stack import Endpoints, create_database

FAST = FailurePolicy(outage_first_s=0.05, outage_max_s=0.1, heartbeat_s=0.05)
CALLS: dict[str, list[int]] = {}


@activity.defn(name="effect_under_test")
async def effect(order: dict[str, str]) -> str:
    calls = CALLS.setdefault(order["key"], [])
    calls.append(activity.info().attempt)
    if order["mode"] == "outage" and len(calls) <= 6:
        raise ConnectionRefusedError(111, "connection refused")
    if order["mode"] == "broken":
        raise ValueError("adresse invalide")
    return "ok"


@workflow.defn(name="EffectUnderTest", sandboxed=False)
class EffectUnderTest:
    @workflow.run
    async def run(self, order: dict[str, str]) -> str:
        try:
            return await workflow.execute_activity(
                effect,
                order,
                start_to_close_timeout=timedelta(minutes=1),
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=100), maximum_attempts=3
                ),
            )
        except ActivityError:
            return "failed for good"


async def test_outage_is_one_attempt_and_a_broken_effect_is_parked(endpoints: Endpoints) -> None:
    url = await create_database(endpoints.database_url, f"af_{uuid.uuid4().hex[:10]}")
    await db.migrate(url)
    pool: asyncpg.Pool = await db.create_pool(url, 3)
    client = await temporal_client.connect(endpoints.temporal_address, lazy=False)
    queue = f"effects-{uuid.uuid4().hex[:8]}"
    try:
        async with Worker(
            client,
            task_queue=queue,
            workflows=[EffectUnderTest],
            activities=[effect],
            interceptors=[ActivityFailures(pool, FAST)],
        ):
            outage = {"key": uuid.uuid4().hex, "mode": "outage"}
            got = await client.execute_workflow(
                EffectUnderTest.run, outage, id=str(uuid.uuid4()), task_queue=queue
            )
            assert got == "ok"
            assert CALLS[outage["key"]] == [1] * 7  # six refusals waited for, one attempt

            dossier = str(uuid.uuid4())
            broken = {"key": uuid.uuid4().hex, "mode": "broken"}
            got = await client.execute_workflow(
                EffectUnderTest.run, broken, id=dossier, task_queue=queue
            )
            assert got == "failed for good"
            assert CALLS[broken["key"]] == [1, 2, 3]
        rows = await pool.fetch(
            "SELECT source, name, dossier_id, attempts, error, data, ref FROM bus.parked"
        )
        assert len(rows) == 1
        row = rows[0]
        assert (row["source"], row["name"], row["dossier_id"], row["attempts"]) == (
            "activity",
            "effect_under_test",
            uuid.UUID(dossier),
            3,
        )
        assert row["error"] == "gave up after 3 attempts: ValueError: adresse invalide"
        assert json.loads(row["data"]) == [broken]
        assert row["ref"].startswith(f"{dossier}:")
        # nothing left listed as retrying once parked
        assert await pool.fetchval("SELECT count(*) FROM bus.activity_failures") == 0
    finally:
        await pool.close()
