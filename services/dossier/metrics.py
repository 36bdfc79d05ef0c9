"""The dossier service's observed series, read from its read model (assistance/metrics.py):
open dossiers by state and kind; R3, the business time left to each open first-response
commitment, the ones past their warning point, and the breaches."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import asyncpg

from assistance import metrics
from assistance.business_time import BusinessCalendar
from assistance.commitment import Commitment
from assistance.metrics import Readings, labels

OPEN = """SELECT status, coalesce(kind, 'unclassified') AS kind, count(*) AS n
            FROM dossier.dossiers WHERE closed_at IS NULL GROUP BY 1, 2"""
# R3: a commitment is open until the first response (or the dossier's closing)
COMMITMENTS = """SELECT first_response_due, technician_id IS NOT NULL AS assigned
                   FROM dossier.dossiers
                  WHERE closed_at IS NULL AND first_responded_at IS NULL"""


def reader(
    pool: asyncpg.Pool, calendar: BusinessCalendar, commitment: Commitment
) -> metrics.Reader:
    # R3: past this many business minutes left, a commitment is at risk (the warning point)
    at_risk_minutes = commitment.hours * 60 * (1 - commitment.warning_fraction)

    async def read() -> dict[str, Readings]:
        async with pool.acquire() as conn:
            open_rows = await conn.fetch(OPEN)
            commitments = await conn.fetch(COMMITMENTS)
            breaches = await conn.fetchval("SELECT count(*) FROM dossier.breaches")
        now = datetime.now(UTC)
        left = [
            (
                Commitment.time_left(calendar, now, row["first_response_due"]).total_seconds() / 60,
                row["assigned"],
            )
            for row in commitments
        ]
        at_risk = Counter(
            "assigned" if assigned else "none"
            for minutes, assigned in left
            if minutes <= at_risk_minutes
        )
        return {
            metrics.OPEN_DOSSIERS: {
                labels(state=r["status"], kind=r["kind"]): float(r["n"]) for r in open_rows
            },
            metrics.TIME_LEFT: metrics.time_left_buckets(minutes for minutes, _ in left),
            metrics.TIME_LEFT_COUNT: {(): float(len(left))},
            metrics.AT_RISK: {
                labels(technician=who): float(at_risk[who]) for who in ("none", "assigned")
            },
            metrics.BREACHES: {(): float(breaches)},
        }

    return read
