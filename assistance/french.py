"""French wording of dates and times, the one way the project writes them to people.

Instants are shown in the business calendar's time zone (Europe/Paris unless configured), the
way people there say them:

    moment(at)        « lundi 30 novembre 2026 à 14:00 », « mardi 1er décembre 2026 à 09:00 »
    moment_short(at)  « lundi 30/11/2026 à 14:00 » (notices, timelines, the queue without year)
    day(at)           « 30 novembre 2026 », « 1er décembre 2026 »
    clock(at)         « 14:00 »

Pure module (no locale data, no framework imports): the dossier workflow uses it too, and it
gives the same text on every machine. The site, which also speaks English, words its dates
with Babel in services/site/i18n.py.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

__all__ = ["MONTHS", "PARIS", "WEEKDAYS", "clock", "day", "moment", "moment_short"]

PARIS = ZoneInfo("Europe/Paris")
WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def local(at: datetime, tz: tzinfo = PARIS) -> datetime:
    """`at` in `tz`; a naive datetime is refused (it would be read in the machine's zone)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, got naive {at.isoformat()}")
    return at.astimezone(tz)


def moment(at: datetime, tz: tzinfo = PARIS, *, seconds: bool = False) -> str:
    """« lundi 30 novembre 2026 à 14:00 »: mails and letters (« à 14:00:05 » with seconds)."""
    at = local(at, tz)
    hour = f"{at:%H:%M:%S}" if seconds else f"{at:%H:%M}"
    return f"{WEEKDAYS[at.weekday()]} {_day_month_year(at.date())} à {hour}"


def moment_short(at: datetime, tz: tzinfo = PARIS, *, year: bool = True) -> str:
    """« lundi 30/11/2026 à 14:00 » (« lundi 30/11 à 14:00 » without the year)."""
    at = local(at, tz)
    numbers = f"{at:%d/%m/%Y}" if year else f"{at:%d/%m}"
    return f"{WEEKDAYS[at.weekday()]} {numbers} à {at:%H:%M}"


def day(at: date | datetime, tz: tzinfo = PARIS) -> str:
    """« 30 novembre 2026 », « 1er décembre 2026 »; a datetime is read in `tz`."""
    if isinstance(at, datetime):
        at = local(at, tz).date()
    return _day_month_year(at)


def clock(at: datetime, tz: tzinfo = PARIS) -> str:
    """« 14:00 »."""
    return f"{local(at, tz):%H:%M}"


def _day_month_year(d: date) -> str:
    number = "1er" if d.day == 1 else str(d.day)
    return f"{number} {MONTHS[d.month - 1]} {d.year}"
