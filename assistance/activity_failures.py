"""The failure policy for activities (docs/decisions/0013), as a worker interceptor:

- a dependency that is down is waited for inside the attempt, heartbeating, without using an
  attempt up (Temporal's attempt counter only moves for failures of the activity itself);
- a local activity (a step's record tried first inside the workflow task) is neither waited
  for nor listed nor parked: its failure goes back to the workflow, which hands the same work to
  a regular activity under this policy;
- an activity that failed more than once is listed in `bus.activity_failures`, so the
  « travail bloqué » view shows it without asking Temporal about every workflow;
- an activity that fails for good (its last attempt, or a non-retryable error) is parked in
  `bus.parked` with its arguments, so an administrator can retry it once the cause is repaired
  (the workflow then records the failure on the dossier: `EffectFailed` in
  services/dossier/process.py, carried out by workflows/dossier.py).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from assistance.failures import FailurePolicy, Outage, describe, is_outage, through_outages
from assistance.parking import ParkedItem, park

log = logging.getLogger(__name__)


class ActivityFailures(Interceptor):
    def __init__(self, pool: asyncpg.Pool, policy: FailurePolicy) -> None:
        self.pool = pool
        self.policy = policy

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next, self)


def _final(info: activity.Info, exc: BaseException) -> bool:
    if isinstance(exc, ApplicationError) and exc.non_retryable:
        return True
    policy = info.retry_policy
    if policy is None:
        return False
    if isinstance(exc, ApplicationError) and exc.type in (policy.non_retryable_error_types or ()):
        return True
    return bool(policy.maximum_attempts) and info.attempt >= policy.maximum_attempts


def _dossier(workflow_id: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(workflow_id or "")
    except ValueError:
        return None


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, owner: ActivityFailures) -> None:
        super().__init__(next)
        self.owner = owner

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        outage = Outage(self.owner.policy)

        async def heartbeat() -> None:
            activity.heartbeat()

        if info.is_local:
            # a first try inside the workflow task: its failure (an outage included) goes to
            # the workflow, which hands the work to a regular activity under this policy
            return await self.next.execute_activity(input)
        while True:
            try:
                result = await self.next.execute_activity(input)
                break
            except Exception as exc:
                if is_outage(exc) and not isinstance(exc, ApplicationError):
                    if outage.waits % 20 == 0:
                        log.warning("%s waits for a dependency: %r", info.activity_type, exc)
                    await outage.wait(heartbeat)
                    continue
                await self._failed(info, input, exc)
                raise
        if info.attempt > 1:
            await self._recovered(info)
        return result

    async def _recovered(self, info: activity.Info) -> None:
        async def clear() -> None:
            await self.owner.pool.execute(
                "DELETE FROM bus.activity_failures WHERE workflow_id = $1 AND activity_id = $2",
                info.workflow_id,
                info.activity_id,
            )

        await through_outages(clear, self.owner.policy, what="activity failures")

    async def _failed(
        self, info: activity.Info, input: ExecuteActivityInput, exc: BaseException
    ) -> None:
        error = describe(exc)
        final = _final(info, exc)

        async def heartbeat() -> None:
            activity.heartbeat()

        async def record() -> None:
            async with self.owner.pool.acquire() as conn, conn.transaction():
                if final:
                    await conn.execute(
                        """DELETE FROM bus.activity_failures
                           WHERE workflow_id = $1 AND activity_id = $2""",
                        info.workflow_id,
                        info.activity_id,
                    )
                    await park(conn, self._parked(info, input, error))
                    return
                await conn.execute(
                    """INSERT INTO bus.activity_failures (workflow_id, activity_id,
                           activity_type, dossier_id, attempt, error)
                       VALUES ($1, $2, $3, $4, $5, $6)
                       ON CONFLICT (workflow_id, activity_id) DO UPDATE SET
                           attempt = EXCLUDED.attempt, error = EXCLUDED.error,
                           last_failed_at = now()""",
                    info.workflow_id,
                    info.activity_id,
                    info.activity_type,
                    _dossier(info.workflow_id),
                    info.attempt,
                    error,
                )

        # waits for PostgreSQL (heartbeating); the activity's own error is raised after
        try:
            await through_outages(
                record, self.owner.policy, what="activity failures", keepalive=heartbeat
            )
        except Exception as failure:  # noqa: BLE001 - logged; the workflow records the failure
            log.error("could not record the failure of %s: %r", info.activity_type, failure)

    def _parked(self, info: activity.Info, input: ExecuteActivityInput, error: str) -> ParkedItem:
        from assistance.temporal import data_converter

        payloads = data_converter.payload_converter.to_payloads(list(input.args))
        args = [json.loads(p.data) for p in payloads]
        return ParkedItem(
            source="activity",
            name=info.activity_type,
            kind=info.activity_type,
            ref=f"{info.workflow_id}:{info.workflow_run_id}:{info.activity_id}",
            subject=info.workflow_type or "",
            data=json.dumps(args, ensure_ascii=False),
            error=f"gave up after {info.attempt} attempts: {error}",
            attempts=info.attempt,
            dossier_id=str(_dossier(info.workflow_id) or "") or None,
        )
