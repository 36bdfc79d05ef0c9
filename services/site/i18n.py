"""French first, English second: Babel catalogues, and dates in Europe/Paris.

Message ids are English; `locale/fr/LC_MESSAGES/messages.po` gives the French. Update the
catalogue with `make site-messages` after changing a text.
"""

from __future__ import annotations

import gettext
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_decimal
from babel.support import Translations

from assistance.business_time import BusinessCalendar
from assistance.clock import PARIS

LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"
LOCALE_DIR = Path(__file__).parent / "locale"
_BABEL = {"fr": Locale("fr", "FR"), "en": Locale("en", "GB")}


def N_(message: str) -> str:
    """Marks a text for the catalogue; it is translated where it is shown."""
    return message


def pick(lang: str | None) -> str:
    return lang if lang in LOCALES else DEFAULT_LOCALE


@lru_cache
def translations(lang: str) -> gettext.NullTranslations:
    if pick(lang) == "en":
        return gettext.NullTranslations()  # the message ids are English
    return Translations.load(str(LOCALE_DIR), [pick(lang)], domain="messages")


def gettext_for(lang: str):  # noqa: ANN201 - a gettext function
    return translations(lang).gettext


def parse(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


# « lundi 30 novembre à 14:00 »; the year is added when it is not this year's.
_WHEN = {
    "fr": ("EEEE d MMMM 'à' HH:mm", "EEEE d MMMM y 'à' HH:mm"),
    "en": ("EEEE d MMMM 'at' HH:mm", "EEEE d MMMM y 'at' HH:mm"),
}


def when(value: str | datetime | None, lang: str, now: datetime | None = None) -> str:
    """« lundi 30 novembre à 14:00 », Paris time: the committed response time and the like."""
    at = parse(value)
    if at is None:
        return ""
    this_year = (now or datetime.now(PARIS)).astimezone(PARIS).year
    short, long = _WHEN[pick(lang)]
    pattern = short if at.astimezone(PARIS).year == this_year else long
    return format_datetime(at, pattern, tzinfo=PARIS, locale=_BABEL[pick(lang)])


def stamp(value: str | datetime | None, lang: str) -> str:
    """« 30/11/2026 14:00 », Paris time: tables and timelines."""
    at = parse(value)
    if at is None:
        return ""
    return format_datetime(at, "dd/MM/y HH:mm", tzinfo=PARIS, locale=_BABEL[pick(lang)])


def day(value: str | datetime | None, lang: str) -> str:
    """« 30 novembre 2026 »."""
    at = parse(value)
    if at is None:
        return ""
    if isinstance(at, datetime):
        at = at.astimezone(PARIS)
    return format_date(at, "d MMMM y", locale=_BABEL[pick(lang)])


def duration(minutes: int, lang: str) -> str:
    """Business time as « 2 h 05 » or « 45 min »."""
    minutes = abs(int(minutes))
    hours, rest = divmod(minutes, 60)
    if hours == 0:
        return f"{rest} min"
    return f"{hours} h {rest:02d}"


def decimal(value: float, lang: str) -> str:
    """« 4,5 » in French, "4.5" in English: one decimal."""
    return format_decimal(value, "0.0", locale=_BABEL[pick(lang)])


def opening_periods(calendar: BusinessCalendar, lang: str) -> list[tuple[str, str]]:
    """The opening periods of a working day, as local times (R13)."""
    locale = _BABEL[pick(lang)]
    return [
        (format_time(start, "HH:mm", locale=locale), format_time(end, "HH:mm", locale=locale))
        for start, end in calendar.periods
    ]
