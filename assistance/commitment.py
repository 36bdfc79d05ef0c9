"""The first-response commitment (R3, engagement 1), defined once.

The centre promises a first response within `hours` business hours of a deposit (4 by default,
`FIRST_RESPONSE_HOURS`), counted on the business calendar (assistance/business_time.py). The
workflow warns when `warning_fraction` of that open time has elapsed (75 % by default) and
records a breach at the due time. The clock stops at the first of the facts in
`CLOCK_STOPPERS`. Everything that computes, shows or reports the commitment reads it from
here: intake (the due time), the dossier workflow (timers and notices), the mails, the site,
the queue, the reports and the API description.

Pure module: no framework imports, usable from workflows (sandbox-safe), services and the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from assistance.business_time import BusinessCalendar

__all__ = [
    "CLOCK_STOPPERS",
    "DEFAULT_COMMITMENT",
    "Commitment",
    "first_response_due",
    "hours_text",
    "percent_text",
]

# R3: what counts as a first response to the customer. The dossier process stops the clock
# on each (`_first_response` in services/dossier/process.py; a test drives every one,
# tests/workflows/test_first_response_hours.py): a written response, a request for
# information, a screen-sharing session, a workaround, and the immediate answer telling the
# customer who takes over (a trainer, the evolution review). A phone call answered live counts
# from its opening. A note, taking the dossier or classifying it do not stop the clock.
CLOCK_STOPPERS = frozenset(
    {"response", "information_request", "screen_share", "workaround", "handover_answer"}
)


@dataclass(frozen=True, slots=True)
class Commitment:
    """R3: a first response within `hours` business hours, warned at `warning_fraction`."""

    hours: float = 4.0
    warning_fraction: float = 0.75

    def __post_init__(self) -> None:
        if not self.hours > 0:
            raise ValueError(f"the first-response commitment must be positive, got {self.hours}")
        if not 0 < self.warning_fraction < 1:
            raise ValueError(
                f"the warning fraction must be between 0 and 1, got {self.warning_fraction}"
            )

    @property
    def budget(self) -> timedelta:
        return timedelta(hours=self.hours)

    # --- time -----------------------------------------------------------------------------

    def due(self, calendar: BusinessCalendar, received_at: datetime) -> datetime:
        """R3: the first response is due `hours` of business time after receipt; a deposit
        while the centre is closed counts from the next opening."""
        return calendar.add_business_time(received_at, self.budget)

    def warning_at(
        self, calendar: BusinessCalendar, received_at: datetime, due: datetime
    ) -> datetime:
        """When `warning_fraction` of the open time from receipt to `due` has elapsed."""
        return calendar.fraction_point(received_at, due, self.warning_fraction)

    @staticmethod
    def time_left(calendar: BusinessCalendar, now: datetime, due: datetime) -> timedelta:
        """Business time left before `due`; negative (business time overdue) once it passed."""
        if due > now:
            return calendar.business_time_between(now, due)
        return -calendar.business_time_between(due, now)

    @staticmethod
    def stops_clock(kind: str) -> bool:
        """Whether a timeline entry of this kind is a first response (R3)."""
        return kind in CLOCK_STOPPERS

    # --- wording ----------------------------------------------------------------------------

    def delay_text(self, lang: str = "fr") -> str:
        """« 4 heures ouvrées », « 1 heure ouvrée », « 1 h 30 ouvrées » (English: "4 business
        hours")."""
        return hours_text(self.hours, business=True, lang=lang)

    def short_delay_text(self, lang: str = "fr") -> str:
        """« 4 heures », « 1 heure », « 1 h 30 »: where the text already says business hours."""
        return hours_text(self.hours, business=False, lang=lang)

    def warning_percent_text(self, lang: str = "fr") -> str:
        """« 75 % »."""
        return percent_text(self.warning_fraction, lang)

    def promise(self) -> str:
        """The promise in a sentence, for descriptions: « une première réponse sous 4 heures
        ouvrées »."""
        return f"une première réponse sous {self.delay_text()}"

    def opened_text(self, due: str) -> str:
        """The customer's timeline entry at opening; `due` is already worded."""
        return f"Dossier ouvert ; première réponse garantie avant le {due}."

    def warning_subject(self, due: str) -> str:
        return f"Première réponse attendue avant le {due}"

    def warning_text(self, reference: str, due: str) -> str:
        return (
            f"Le dossier {reference} n'a pas encore reçu de première réponse ; "
            f"l'engagement de {self.delay_text()} expire le {due}."
        )

    def warning_entry(self) -> str:
        """The timeline entry of the warning."""
        return f"Alerte : {self.warning_percent_text()} du délai de première réponse écoulé."

    def breach_subject(self, reference: str) -> str:
        return f"Engagement de première réponse dépassé : {reference}"

    def breach_text(self, reference: str, software: str, due: str) -> str:
        # « dans les 4 heures ouvrées », but « dans le délai de 1 heure ouvrée »
        within = "dans les" if _plural(self.hours) else "dans le délai de"
        return (
            f"Le dossier {reference} ({software}) n'a pas reçu de réponse {within} "
            f"{self.delay_text()} (échéance {due})."
        )


DEFAULT_COMMITMENT = Commitment()


def first_response_due(
    calendar: BusinessCalendar, received_at: datetime, hours: float = DEFAULT_COMMITMENT.hours
) -> datetime:
    """R3: the due time of a request received at `received_at` (intake's one call)."""
    return Commitment(hours).due(calendar, received_at)


def hours_text(hours: float, *, business: bool = True, lang: str = "fr") -> str:
    """A duration in hours, worded: « 4 heures ouvrées », « 1 heure ouvrée », « 2 h 30
    ouvrées », « 45 minutes ouvrées » (`business=False` leaves out « ouvrées »)."""
    whole, rest = _hours_minutes(hours)
    if lang == "en":
        if rest:
            amount = f"{hours:g}"
            noun = "hours"
        else:
            amount, noun = str(whole), "hour" if whole == 1 else "hours"
        return f"{amount} business {noun}" if business else f"{amount} {noun}"
    plural = _plural(hours)
    if whole == 0:
        text = f"{rest} minute{'s' if plural else ''}"
    elif rest == 0:
        text = f"{whole} heure{'s' if plural else ''}"
    else:
        text = f"{whole} h {rest:02d}"
    if not business:
        return text
    return f"{text} ouvrées" if plural else f"{text} ouvrée"


def _hours_minutes(hours: float) -> tuple[int, int]:
    minutes = round(hours * 60)
    if minutes <= 0:
        raise ValueError(f"a commitment is a positive duration, got {hours} hours")
    whole, rest = divmod(minutes, 60)
    return whole, rest


def _plural(hours: float) -> bool:
    """French agreement: « 1 heure », « 1 minute » are singular; « 1 h 30 » is plural."""
    whole, rest = _hours_minutes(hours)
    if whole == 0:
        return rest > 1
    return rest > 0 or whole > 1


def percent_text(fraction: float, lang: str = "fr") -> str:
    """« 75 % » (« 62,5 % »); "75%" in English."""
    value = f"{fraction * 100:.1f}".removesuffix(".0")
    if lang == "en":
        return f"{value}%"
    return f"{value.replace('.', ',')} %"
