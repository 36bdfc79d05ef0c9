"""Bug rules, pure (R8): the order of the developers' work, who may do it, which released
version carries a fix, and when a quiet bug is escalated (R2).

The life of a bug, as MISSION.md tells it:
  new → reproduced → diagnosed → fix_completed → released
  new → not_reproducible (questions to the customers) → reproduced once they answer
  any unreleased bug → duplicate, when its only dossier is linked to a known bug instead
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from assistance.business_time import BusinessCalendar
from assistance.errors import Conflict, Forbidden


class State(StrEnum):
    new = "new"
    reproduced = "reproduced"
    not_reproducible = "not_reproducible"
    diagnosed = "diagnosed"
    fix_completed = "fix_completed"
    released = "released"
    duplicate = "duplicate"


class Step(StrEnum):
    """What a developer records; each is a fact published as `bugs.bug.<step>`."""

    reproduced = "reproduced"
    not_reproducible = "not_reproducible"
    diagnosed = "diagnosed"
    fix_completed = "fix_completed"


STATE_LABELS = {
    State.new: "signalé, à reproduire",
    State.reproduced: "reproduit",
    State.not_reproducible: "non reproduit : questions au client",
    State.diagnosed: "cause identifiée",
    State.fix_completed: "correctif développé, en attente de livraison",
    State.released: "correctif livré",
    State.duplicate: "doublon d'un bug connu",
}
CLOSED = frozenset({State.released, State.duplicate})
# States where the next move is the developers' (R2: their silence is escalated).
AWAITING_DEVELOPERS = frozenset({State.new, State.reproduced, State.diagnosed})

# R8: reproduce, then diagnose, then fix. A step may be recorded again to correct it (new
# steps, a revised diagnosis) until the fix is signalled; the fix itself is signalled once
# (the same version again is a replay: services/bugs/service.py), so customers are told once.
_ALLOWED_FROM: dict[Step, frozenset[State]] = {
    Step.reproduced: frozenset({State.new, State.not_reproducible, State.reproduced}),
    Step.not_reproducible: frozenset({State.new, State.not_reproducible}),
    Step.diagnosed: frozenset({State.reproduced, State.diagnosed}),
    Step.fix_completed: frozenset({State.diagnosed}),
}
_REFUSALS: dict[Step, tuple[str, str]] = {
    Step.reproduced: ("not_reproducible_now", "Ce bug ne peut plus être marqué reproduit."),
    Step.not_reproducible: (
        "already_reproduced",
        "Ce bug a déjà été reproduit : il ne peut plus être déclaré non reproductible.",
    ),
    Step.diagnosed: ("not_reproduced", "Reproduisez le bug avant d'en poser le diagnostic (R8)."),
    Step.fix_completed: (
        "not_diagnosed",
        "Enregistrez le diagnostic avant de signaler la correction (R8).",
    ),
}


@dataclass(frozen=True)
class BugFacts:
    """What the rules need to know about a bug."""

    state: State
    developer_id: uuid.UUID | None
    developer_name: str | None = None
    duplicate_of: uuid.UUID | None = None


def check_open(bug: BugFacts) -> None:
    if bug.state is State.released:
        raise Conflict("bug_released", "Ce bug est corrigé et livré ; il n'évolue plus.")
    if bug.state is State.duplicate:
        raise Conflict(
            "bug_duplicate",
            f"Ce bug est un doublon du bug {bug.duplicate_of} ; travaillez sur celui-ci.",
        )


def check_claim(bug: BugFacts, developer_id: uuid.UUID, admin: bool = False) -> bool:
    """A developer takes a bug; True if that changes who holds it."""
    check_open(bug)
    if bug.developer_id == developer_id:
        return False
    if bug.developer_id is not None and not admin:
        raise Conflict(
            "claimed_by_another",
            f"Ce bug est déjà pris par {bug.developer_name or 'un autre développeur'}.",
        )
    return True


def check_step(bug: BugFacts, step: Step, developer_id: uuid.UUID, admin: bool = False) -> None:
    """R8: the steps in order, by the developer who holds the bug (an admin may step in).

    The fix is signalled by the developer who claimed the bug (CI calls with that developer's
    token) or an admin: anyone else is refused (403), an unclaimed bug too."""
    check_open(bug)
    if step is Step.fix_completed:
        check_fix_author(bug, developer_id, admin)
    elif not admin and bug.developer_id not in (None, developer_id):
        raise Conflict(
            "claimed_by_another",
            f"Ce bug est suivi par {bug.developer_name or 'un autre développeur'}.",
        )
    if bug.state is State.fix_completed and step is Step.fix_completed:
        raise Conflict(
            "fix_already_completed",
            "La correction de ce bug est déjà signalée dans une autre version : elle ne "
            "change plus (le client n'est prévenu qu'une fois).",
            "version",
        )
    if bug.state not in _ALLOWED_FROM[step]:
        code, message = _REFUSALS[step]
        raise Conflict(code, message)


def check_fix_author(bug: BugFacts, developer_id: uuid.UUID, admin: bool = False) -> None:
    """Only the developer holding the bug (or an admin) signals its fix."""
    if admin or bug.developer_id == developer_id:
        return
    if bug.developer_id is None:
        raise Forbidden(
            "bug_not_claimed",
            "Prenez d'abord ce bug : seul le développeur qui le suit signale sa correction.",
        )
    raise Forbidden(
        "not_your_bug",
        f"Ce bug est suivi par {bug.developer_name or 'un autre développeur'} : "
        "seul ce développeur (ou un administrateur) signale sa correction.",
    )


def check_link(bug: BugFacts) -> None:
    """A dossier may join any bug that is not a duplicate (a released one tells it at once)."""
    if bug.state is State.duplicate:
        raise Conflict(
            "bug_duplicate",
            f"Ce bug est un doublon du bug {bug.duplicate_of} ; rattachez le dossier à celui-ci.",
        )


# --- versions ------------------------------------------------------------------------------

_PART = re.compile(r"^(\d*)(.*)$", re.DOTALL)


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """A sort key for versions of one software: "5.2" < "5.2.1" < "5.10", "5.3-rc1" < "5.3",
    "5.3.0" == "5.3"; build metadata ("+b7") is ignored."""
    parts: list[tuple[int, int, str]] = []
    core = version.strip().lower().removeprefix("v").split("+", 1)[0]
    for raw in core.split("."):
        match = _PART.match(raw)
        assert match is not None  # the pattern matches every string
        digits, suffix = match[1], match[2].lstrip("-")
        number = int(digits) if digits else 0
        # a suffix marks a pre-release: before the same number without one
        parts.append((number, 0 if suffix else 1, suffix))
    while parts and parts[-1] == (0, 1, ""):
        parts.pop()
    return tuple(parts)


def carries_fix(released: str, fix_version: str) -> bool:
    """R8: a released version carries a fix made for `fix_version` or any earlier version
    (each software's versions form one line)."""
    return version_key(fix_version) <= version_key(released)


def first_carrier(released: list[str], fix_version: str) -> str | None:
    """The earliest of these released versions that carries the fix, if any."""
    carriers = [v for v in released if carries_fix(v, fix_version)]
    return min(carriers, key=version_key) if carriers else None


# --- R2: follow-through ----------------------------------------------------------------------


def quiet_since(
    state: State, last_activity_at: datetime, last_answer_at: datetime | None
) -> datetime | None:
    """Since when the developers owe the next move, or None if they owe nothing now.

    A bug waiting for the customers' answers is not the developers' silence; their answer
    puts the ball back in the developers' court."""
    if state in AWAITING_DEVELOPERS:
        return last_activity_at
    if state is State.not_reproducible and last_answer_at and last_answer_at > last_activity_at:
        return last_answer_at
    return None


def escalation_due(
    calendar: BusinessCalendar, since: datetime, quiet_hours: float, now: datetime
) -> bool:
    """R2: no developer activity for `quiet_hours` business hours."""
    return calendar.add_business_time(since, timedelta(hours=quiet_hours)) <= now
