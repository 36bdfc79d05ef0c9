"""French wording of times: shown in Europe/Paris, the way people there say them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

PARIS = ZoneInfo("Europe/Paris")


def in_paris(moment: datetime) -> datetime:
    """An instant as shown to people: Europe/Paris, with its offset."""
    return moment.astimezone(PARIS)


def fr_datetime(moment: datetime) -> str:
    """« mardi 2 juin 2026 à 09:00 » (« 1er » for the first of the month), Europe/Paris."""
    local = moment.astimezone(PARIS)
    day = "1er" if local.day == 1 else str(local.day)
    return format_datetime(local, f"EEEE '{day}' MMMM y 'à' HH:mm", locale="fr_FR", tzinfo=PARIS)


def fr_date(moment: datetime) -> str:
    """« 2 juin 2026 », Europe/Paris."""
    local = moment.astimezone(PARIS)
    day = "1er" if local.day == 1 else str(local.day)
    return format_datetime(local, f"'{day}' MMMM y", locale="fr_FR", tzinfo=PARIS)


def fr_time(moment: datetime) -> str:
    """« 10:00 », Europe/Paris."""
    return moment.astimezone(PARIS).strftime("%H:%M")
