"""The rules of the evolutions service, pure: no framework, no I/O.

R9  Evolution requests go to a weekly review per software; the product manager decides; an
    accepted request has a specification; a rejected one has a reason.
R11 Documentation is kept per version; "latest" is the last released version.
R12 Every week, the functional evolutions of each software are presented.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from assistance.errors import Conflict, DomainError

Decision = Literal["accepted", "rejected"]

_DAYS = {
    "monday": 0,
    "lundi": 0,
    "tuesday": 1,
    "mardi": 1,
    "wednesday": 2,
    "mercredi": 2,
    "thursday": 3,
    "jeudi": 3,
    "friday": 4,
    "vendredi": 4,
    "saturday": 5,
    "samedi": 5,
    "sunday": 6,
    "dimanche": 6,
}
_SLOT = re.compile(r"^\s*(?P<day>[a-zA-Z]+)\s+(?P<hour>[0-9]{1,2})[:h](?P<minute>[0-9]{2})\s*$")
VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")


# --- R9: when the review is held ----------------------------------------------------------------


@dataclass(frozen=True)
class ReviewSlot:
    """A weekly moment in local time: `weekday` 0 = Monday (ISO, minus one)."""

    weekday: int
    hour: int
    minute: int

    @classmethod
    def parse(cls, text: str) -> ReviewSlot:
        """`"monday 10:00"`, `"lundi 10h00"`; raises ValueError otherwise."""
        match = _SLOT.match(text)
        if match is None or match["day"].lower() not in _DAYS:
            raise ValueError(f"review slot {text!r}: expected e.g. 'monday 10:00'")
        hour, minute = int(match["hour"]), int(match["minute"])
        if hour > 23 or minute > 59:
            raise ValueError(f"review slot {text!r}: no such time of day")
        return cls(_DAYS[match["day"].lower()], hour, minute)

    @property
    def temporal_day_of_week(self) -> int:
        """Temporal's calendar counts days from Sunday = 0."""
        return (self.weekday + 1) % 7

    def next_times(self, after: datetime, zone: str, count: int = 1) -> list[datetime]:
        """The next `count` local review times strictly after `after` (DST-safe: the wall
        clock stays at the slot's time, the UTC instant moves with the offset)."""
        if after.tzinfo is None:
            raise ValueError("after must be an aware datetime")
        tz = ZoneInfo(zone)
        local = after.astimezone(tz)
        day = local.date() + timedelta(days=(self.weekday - local.weekday()) % 7)
        found: list[datetime] = []
        while len(found) < count:
            moment = datetime.combine(day, time(self.hour, self.minute), tzinfo=tz)
            if moment > after:
                found.append(moment)
            day += timedelta(days=7)
        return found


# --- R12: weeks ---------------------------------------------------------------------------------


def iso_week(moment: datetime, zone: str = "Europe/Paris") -> str:
    """The ISO week of `moment` in local time, e.g. `2026-W12`."""
    year, week, _ = moment.astimezone(ZoneInfo(zone)).isocalendar()
    return f"{year}-W{week:02d}"


def week_start(week: str) -> date:
    """The Monday of an ISO week label; raises ValueError for a malformed label."""
    match = re.fullmatch(r"([0-9]{4})-W([0-9]{2})", week)
    if match is None:
        raise ValueError(f"not an ISO week: {week!r}")
    return date.fromisocalendar(int(match[1]), int(match[2]), 1)


# --- R9: decisions ------------------------------------------------------------------------------


def check_decision(decision: Decision, reason: str | None, specification: str | None) -> None:
    """R9: an accepted request carries its specification; a rejected one its reason."""
    if decision == "accepted" and not (specification or "").strip():
        raise DomainError(
            "specification_required",
            "Une demande acceptée doit avoir son cahier des charges (Markdown).",
            "specification",
        )
    if decision == "rejected" and not (reason or "").strip():
        raise DomainError(
            "reason_required", "Un refus doit être motivé pour le demandeur.", "reason"
        )


def replayed_decision(
    recorded: dict[str, Any], decision: Decision, reason: str | None, specification: str | None
) -> bool:
    """True when the same decision is given again (idempotent); a different one conflicts."""
    same = (
        recorded["status"] == decision
        and (recorded["reason"] or "").strip() == (reason or "").strip()
        and (recorded["specification"] or "").strip() == (specification or "").strip()
    )
    if not same:
        raise Conflict(
            "already_decided",
            f"Cette évolution a déjà été décidée ({recorded['status']}).",
            "decision",
        )
    return True


def can_group(target: dict[str, Any], others: list[dict[str, Any]]) -> None:
    """Only undecided evolutions of one software are grouped."""
    if target["status"] != "open":
        raise Conflict("not_open", "Seule une évolution non décidée peut en regrouper d'autres.")
    for other in others:
        if other["software"] != target["software"]:
            raise DomainError(
                "other_software",
                "On ne regroupe que des demandes du même logiciel.",
                "evolutions",
            )
        if other["status"] == "merged" and other["merged_into"] == target["id"]:
            continue  # already grouped here: idempotent
        if other["status"] != "open":
            raise Conflict(
                "not_open",
                f"L'évolution {other['id']} est déjà décidée ou regroupée.",
                "evolutions",
            )


# --- R11: versions and pages --------------------------------------------------------------------


def check_version(version: str) -> str:
    if not VERSION.match(version) or version == "latest":
        raise DomainError(
            "invalid_version", f"Numéro de version invalide : {version!r}.", "version"
        )
    return version


def slugify(text: str) -> str:
    """A URL-safe slug: lower case ASCII, words joined with dashes."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:100].strip("-")
