"""Intake rules, pure: references and the first-response commitment."""

from __future__ import annotations

from datetime import datetime, timedelta

from assistance.business_time import BusinessCalendar


def reference(year: int, number: int) -> str:
    """A human-readable dossier reference: D-2026-000042."""
    return f"D-{year}-{number:06d}"


def first_response_due(
    calendar: BusinessCalendar, received_at: datetime, budget_hours: float
) -> datetime:
    """R3: the first response is due `budget_hours` of business time after receipt;
    a deposit while the centre is closed counts from the next opening."""
    return calendar.add_business_time(received_at, timedelta(hours=budget_hours))
