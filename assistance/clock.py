"""Times shown to people are in Europe/Paris; times stored are UTC instants."""

from __future__ import annotations

from datetime import datetime
from typing import overload
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


@overload
def local(at: datetime) -> datetime: ...
@overload
def local(at: None) -> None: ...
def local(at: datetime | None) -> datetime | None:
    return None if at is None else at.astimezone(PARIS)
