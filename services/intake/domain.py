"""Intake rules, pure: references; the R3 due time comes from assistance/commitment.py."""

from __future__ import annotations

from assistance.commitment import first_response_due

__all__ = ["first_response_due", "reference"]


def reference(year: int, number: int) -> str:
    """A human-readable dossier reference: D-2026-000042."""
    return f"D-{year}-{number:06d}"
