"""A simulation scenario: the weeks, the arrivals, the team and the events that shape them.

A scenario is a TOML file (read with the standard library's `tomllib`) laid over the defaults
below; the default scenario ships as `simulation/scenarios/default.toml` (May 2032: Ascension
and its bridge, Whit Monday, a trainer on leave, fortnightly releases). Every key is optional;
an unknown key, a wrong type or an impossible value is refused with a message naming it.

Durations of people's actions are triangular spreads `[low, most likely, high]`: minutes for
what a technician does at the desk, business hours for what takes days (a bug's reproduction,
a customer's answer). Shares are fractions between 0 and 1.

Pure module: no I/O besides reading the file given, no clock, no framework.
"""

from __future__ import annotations

import dataclasses
import random
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, cast

from assistance.business_time import BusinessCalendar
from services.dossier.domain import KINDS
from services.dossier.state import DossierPolicy
from services.evolutions.domain import ReviewSlot

DEFAULT_FILE = Path(__file__).parent / "scenarios" / "default.toml"
CHANNELS = ("web", "mail", "phone")
ROLES = ("technician", "trainer", "developer", "product_manager")
ROLE_LABELS = {
    "technician": "technicien",
    "trainer": "formateur",
    "developer": "développeur",
    "product_manager": "chef de produit",
}


class ScenarioError(ValueError):
    """A scenario that cannot be run; the message names the key, in French."""


@dataclass(frozen=True)
class Spread:
    """A triangular distribution: never below `low`, never above `high`, most often `mode`."""

    low: float
    mode: float
    high: float

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.mode <= self.high:
            raise ScenarioError(
                f"durée [{self.low}, {self.mode}, {self.high}] : il faut 0 ≤ min ≤ mode ≤ max"
            )

    def draw(self, rng: random.Random) -> float:
        if self.low == self.high:
            return self.low
        return rng.triangular(self.low, self.high, self.mode)


@dataclass(frozen=True)
class Minutes:
    """What a technician spends at the desk on each action (minutes)."""

    take: Spread = Spread(0.5, 1, 2)
    diagnose: Spread = Spread(2, 4, 10)
    answer: Spread = Spread(3, 6, 15)  # writing a response
    information_request: Spread = Spread(2, 3, 6)
    screen_share: Spread = Spread(5, 10, 25)  # a screen-sharing session (R6)
    workaround: Spread = Spread(3, 8, 20)  # finding and writing a workaround (R8)
    close: Spread = Spread(0.5, 1, 2)
    phone_call: Spread = Spread(4, 8, 15)  # a call answered live (R1)


@dataclass(frozen=True)
class Hours:
    """What takes longer, in business hours of whoever does it."""

    reproduce: Spread = Spread(0.5, 1, 4)  # a developer reproduces a bug (R8)
    bug_diagnosis: Spread = Spread(0.5, 1, 4)
    fix: Spread = Spread(1, 3, 8)
    decision: Spread = Spread(0.5, 4, 16)  # a product manager decides after the review (R9)
    rebooking: Spread = Spread(0.25, 1, 3)  # the training lead books by hand (R7, no slot)
    customer_reply: Spread = Spread(0.5, 3, 16)  # a customer answers a question
    customer_confirmation: Spread = Spread(0.5, 4, 30)  # a customer confirms a resolution


@dataclass(frozen=True)
class Behaviour:
    """How the work goes, as shares of the dossiers concerned."""

    screen_share: float = 0.3  # usage questions answered in a screen-sharing session (R6)
    information_request: float = 0.15  # usage questions where the customer is asked first
    no_workaround: float = 0.3  # bugs without a workaround (the reason is recorded, R8)
    known_bug: float = 0.6  # bug dossiers that join a bug already reported
    evolution_accepted: float = 0.4  # evolution requests the product manager accepts (R9)
    customer_confirms: float = 0.6  # customers who confirm a resolution (else it closes)
    phone_patience_minutes: float = 10.0  # a caller nobody answers deposits on the site


@dataclass(frozen=True)
class ArrivalProfile:
    """Where the week's requests fall: by weekday, by hour, and what they are."""

    # Relative volume per weekday, Monday first (a closed weekday counts as a Saturday).
    weekdays: tuple[float, ...] = (1.35, 1.05, 1.0, 1.0, 0.9, 0.1, 0.06)
    # Relative volume per local hour (0–23) on a business day: the morning, the lunch dip.
    business_day_hours: tuple[float, ...] = (
        *(0.1,) * 7,
        0.6,  # 07:00
        1.6,  # 08:00
        3.0,  # 09:00
        3.2,  # 10:00
        2.8,  # 11:00
        1.0,  # 12:00: lunch
        1.6,  # 13:00
        2.8,  # 14:00
        2.7,  # 15:00
        2.4,  # 16:00
        1.8,  # 17:00
        0.9,  # 18:00
        0.6,  # 19:00
        0.5,  # 20:00
        0.4,  # 21:00
        0.3,  # 22:00
        0.2,  # 23:00
    )
    # On a weekend or a bank holiday: fewer, spread over the day.
    closed_day_hours: tuple[float, ...] = (
        *(0.1,) * 8,
        *(0.6,) * 4,
        0.4,
        *(0.6,) * 6,
        0.5,
        0.4,
        0.3,
        0.2,
        0.1,
    )
    channels: dict[str, float] = field(
        default_factory=lambda: {"web": 0.55, "mail": 0.3, "phone": 0.15}
    )
    kinds: dict[str, float] = field(
        default_factory=lambda: {
            "usage": 0.65,
            "advanced_usage": 0.1,
            "bug": 0.15,
            "evolution": 0.1,
        }
    )
    softwares: dict[str, float] = field(
        default_factory=lambda: {"manao-compta": 0.6, "manao-paie": 0.4}
    )


@dataclass(frozen=True)
class Peak:
    """More (or fewer) requests than usual on these days: `factor` times the usual rate."""

    first: date
    last: date
    factor: float
    reason: str = ""


@dataclass(frozen=True)
class Absence:
    """The `number`-th person of a role (1 = the first) is away these days, both included."""

    role: str
    number: int
    first: date
    last: date
    reason: str = ""


@dataclass(frozen=True)
class WorkingHours:
    """The `number`-th person of a role works these hours (e.g. "08:00-12:00,13:00-16:00")."""

    role: str
    number: int
    hours: str


@dataclass(frozen=True)
class Staff:
    technicians: int = 4
    trainers: int = 2
    developers: int = 6
    product_managers: int = 1
    hours: str = "09:00-12:00,13:00-18:00"  # everyone's, unless `working_hours` says otherwise
    absences: tuple[Absence, ...] = ()
    working_hours: tuple[WorkingHours, ...] = ()

    def count(self, role: str) -> int:
        return {
            "technician": self.technicians,
            "trainer": self.trainers,
            "developer": self.developers,
            "product_manager": self.product_managers,
        }[role]


@dataclass(frozen=True)
class Release:
    """A version of a software released at `at` (its number: the next after the last one)."""

    software: str
    at: datetime


@dataclass(frozen=True)
class Scenario:
    name: str = "scénario par défaut"
    start: date = date(2032, 5, 3)  # a Monday; the test server's clock only moves forward
    weeks: int = 4
    per_day: float = 100.0  # a week's requests / 5 (weekend deposits included)
    drain_weeks: int = 2  # after the last arrival, the team goes on without new requests
    seed: int = 16
    tick_minutes: int = 1  # people act on this grid of simulated time
    business_hours: str = "09:00-12:00,13:00-18:00"
    closed_days: tuple[date, ...] = ()  # beyond the French public holidays (bridges)
    policy: dict[str, Any] = field(default_factory=dict)  # DossierPolicy fields changed
    arrivals: ArrivalProfile = field(default_factory=ArrivalProfile)
    peaks: tuple[Peak, ...] = ()
    staff: Staff = field(default_factory=Staff)
    behaviour: Behaviour = field(default_factory=Behaviour)
    minutes: Minutes = field(default_factory=Minutes)
    hours: Hours = field(default_factory=Hours)
    first_versions: dict[str, str] = field(
        default_factory=lambda: {"manao-compta": "5.2", "manao-paie": "3.7"}
    )
    release_slot: str = "thursday 14:00"  # regular releases of every software…
    release_every_weeks: int = 2  # …every this many weeks (0: only the listed releases)
    releases: tuple[Release, ...] = ()
    review_slot: str = "monday 10:00"  # the weekly evolution review of every software (R9)

    def __post_init__(self) -> None:
        self._check()

    # --- what the run is computed with -------------------------------------------------------

    def calendar(self) -> BusinessCalendar:
        """R3: the centre's calendar (French public holidays, plus the scenario's closures)."""
        return BusinessCalendar.parse(self.business_hours, self._closed_text())

    def dossier_policy(self) -> DossierPolicy:
        """The rules every simulated dossier is opened under (intake's `dossier_policy`)."""
        return replace(
            DossierPolicy(business_hours=self.business_hours, closed_days=self._closed_text()),
            **self.policy,
        )

    def person_calendar(self, role: str, number: int) -> BusinessCalendar:
        """When one person works: their hours on the centre's business days, absences off."""
        hours = next(
            (w.hours for w in self.staff.working_hours if (w.role, w.number) == (role, number)),
            self.staff.hours,
        )
        away = {
            a.first + timedelta(days=i)
            for a in self.staff.absences
            if (a.role, a.number) == (role, number)
            for i in range((a.last - a.first).days + 1)
        }
        closed = ",".join(sorted({*self._closed_text().split(","), *map(str, away)} - {""}))
        return BusinessCalendar.parse(hours, closed)

    @property
    def arrivals_end(self) -> datetime:
        """The end of the last day requests arrive (local midnight)."""
        return self._midnight(self.start + timedelta(weeks=self.weeks))

    @property
    def end(self) -> datetime:
        """The end of the simulated time: the arrivals, then the drain."""
        return self._midnight(self.start + timedelta(weeks=self.weeks + self.drain_weeks))

    @property
    def begin(self) -> datetime:
        return self._midnight(self.start)

    def release_times(self) -> list[Release]:
        """Every release within the simulated time, in order: the listed ones and the regular
        ones (one per software every `release_every_weeks` weeks, from the first week; on
        the next business day when the slot falls on a closed one)."""
        found = [r for r in self.releases if self.begin <= r.at < self.end]
        if self.release_every_weeks:
            calendar = self.calendar()
            slot = ReviewSlot.parse(self.release_slot)
            times = slot.next_times(self.begin, calendar.timezone, self._weeks_total)
            for i, at in enumerate(times):
                while not calendar.is_business_day(at):  # a holiday: the next business day
                    at += timedelta(days=1)
                if i % self.release_every_weeks == 0 and at < self.end:
                    found += [Release(s, at) for s in self.arrivals.softwares]
        return sorted(found, key=lambda r: (r.at, r.software))

    def review_times(self) -> list[datetime]:
        slot = ReviewSlot.parse(self.review_slot)
        times = slot.next_times(self.begin, self.calendar().timezone, self._weeks_total)
        return [t for t in times if t < self.end]

    def with_team(self, technicians: int | None = None, trainers: int | None = None) -> Scenario:
        """The same scenario with another team; the absences and hours of people no longer in
        it are dropped."""
        staff = self.staff
        if technicians is not None:
            staff = replace(staff, technicians=technicians)
        if trainers is not None:
            staff = replace(staff, trainers=trainers)
        staff = replace(
            staff,
            absences=tuple(a for a in staff.absences if a.number <= staff.count(a.role)),
            working_hours=tuple(w for w in staff.working_hours if w.number <= staff.count(w.role)),
        )
        return replace(self, staff=staff)

    # --- internals ---------------------------------------------------------------------------

    @property
    def _weeks_total(self) -> int:
        return self.weeks + self.drain_weeks + 1

    def _closed_text(self) -> str:
        return ",".join(d.isoformat() for d in sorted(self.closed_days))

    def _midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.calendar().tz)

    def _check(self) -> None:
        if self.weeks < 1 or self.drain_weeks < 0:
            raise ScenarioError("run.weeks doit valoir au moins 1 et run.drain_weeks au moins 0")
        if self.per_day <= 0:
            raise ScenarioError("run.per_day doit être positif")
        if not 1 <= self.tick_minutes <= 60:
            raise ScenarioError("run.tick_minutes doit être entre 1 et 60")
        if self.start.weekday() != 0:
            raise ScenarioError(f"run.start ({self.start}) doit être un lundi")
        try:
            self.calendar()
            ReviewSlot.parse(self.release_slot)
            ReviewSlot.parse(self.review_slot)
        except ValueError as exc:
            raise ScenarioError(f"calendrier ou créneau invalide : {exc}") from None
        unknown = set(self.policy) - {f.name for f in dataclasses.fields(DossierPolicy)}
        if unknown:
            raise ScenarioError(f"policy : clé(s) inconnue(s) {sorted(unknown)}")
        a = self.arrivals
        if len(a.weekdays) != 7 or len(a.business_day_hours) != 24:
            raise ScenarioError("arrivals : 7 poids de jours et 24 poids d'heures sont attendus")
        if len(a.closed_day_hours) != 24:
            raise ScenarioError("arrivals.closed_day_hours : 24 poids sont attendus")
        for name, shares, allowed in (
            ("channels", a.channels, CHANNELS),
            ("kinds", a.kinds, KINDS),
            ("softwares", a.softwares, None),
        ):
            if not shares or any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
                raise ScenarioError(f"arrivals.{name} : des parts positives sont attendues")
            if allowed is not None and not set(shares) <= set(allowed):
                raise ScenarioError(f"arrivals.{name} : valeurs permises {list(allowed)}")
        missing = set(a.softwares) - set(self.first_versions)
        if missing:
            raise ScenarioError(f"versions : pas de première version pour {sorted(missing)}")
        people: list[Absence | WorkingHours] = [*self.staff.absences, *self.staff.working_hours]
        for who in people:
            if who.role not in ROLES:
                raise ScenarioError(f"staff : rôle inconnu {who.role!r} (permis : {ROLES})")
            if not 1 <= who.number <= max(self.staff.count(who.role), 1):
                raise ScenarioError(
                    f"staff : il n'y a pas de {ROLE_LABELS[who.role]} n° {who.number} dans l'équipe"
                )
        for person in self.staff.working_hours:
            try:
                BusinessCalendar.parse(person.hours)
            except ValueError as exc:
                raise ScenarioError(f"staff.working_hours : {exc}") from None
        for b in dataclasses.fields(Behaviour):
            value = getattr(self.behaviour, b.name)
            if b.name != "phone_patience_minutes" and not 0 <= value <= 1:
                raise ScenarioError(f"behaviour.{b.name} doit être entre 0 et 1")
        if self.staff.technicians < 1:
            raise ScenarioError("staff.technicians : il faut au moins un technicien")


# --- reading a TOML file -------------------------------------------------------------------

_RUN_KEYS = {
    "name": "name",
    "start": "start",
    "weeks": "weeks",
    "per_day": "per_day",
    "drain_weeks": "drain_weeks",
    "seed": "seed",
    "tick_minutes": "tick_minutes",
}


def load(path: Path | None = None) -> Scenario:
    """The scenario of this file (the default one when None)."""
    path = path or DEFAULT_FILE
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"scénario illisible ({path}) : {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"scénario {path} : TOML invalide ({exc})") from None
    return from_table(table)


def from_table(table: dict[str, Any]) -> Scenario:
    """A scenario from a TOML document already parsed (the defaults for what it leaves out)."""
    t = dict(table)
    kw: dict[str, Any] = {}
    run = _table(t.pop("run", {}), "run")
    for key, name in _RUN_KEYS.items():
        if key in run:
            kw[name] = _convert(run.pop(key), Scenario, name, f"run.{key}")
    _no_more(run, "run")
    cal = _table(t.pop("calendar", {}), "calendar")
    if "business_hours" in cal:
        kw["business_hours"] = _text(cal.pop("business_hours"), "calendar.business_hours")
    if "closed_days" in cal:
        kw["closed_days"] = tuple(
            _date(v, "calendar.closed_days") for v in _list(cal.pop("closed_days"), "calendar")
        )
    _no_more(cal, "calendar")
    if "policy" in t:
        kw["policy"] = _table(t.pop("policy"), "policy")
    if "arrivals" in t:
        kw["arrivals"] = _dataclass(ArrivalProfile, _table(t.pop("arrivals"), "arrivals"))
    if "peaks" in t:
        kw["peaks"] = tuple(
            Peak(
                first=_date(p.get("from"), "peaks.from"),
                last=_date(p.get("to", p.get("from")), "peaks.to"),
                factor=_number(p.get("factor"), "peaks.factor"),
                reason=str(p.get("reason", "")),
            )
            for p in _list(t.pop("peaks"), "peaks")
        )
    if "staff" in t:
        kw["staff"] = _staff(_table(t.pop("staff"), "staff"))
    if "behaviour" in t:
        kw["behaviour"] = _dataclass(Behaviour, _table(t.pop("behaviour"), "behaviour"))
    durations = _table(t.pop("durations", {}), "durations")
    if "minutes" in durations:
        kw["minutes"] = _dataclass(Minutes, _table(durations.pop("minutes"), "durations.minutes"))
    if "hours" in durations:
        kw["hours"] = _dataclass(Hours, _table(durations.pop("hours"), "durations.hours"))
    _no_more(durations, "durations")
    versions = _table(t.pop("versions", {}), "versions")
    if "first" in versions:
        kw["first_versions"] = {
            str(k): str(v) for k, v in _table(versions.pop("first"), "versions.first").items()
        }
    if "slot" in versions:
        kw["release_slot"] = _text(versions.pop("slot"), "versions.slot")
    if "every_weeks" in versions:
        kw["release_every_weeks"] = int(_number(versions.pop("every_weeks"), "versions"))
    if "releases" in versions:
        kw["releases"] = tuple(
            Release(
                software=_text(r.get("software"), "versions.releases.software"),
                at=_moment(r.get("at"), "versions.releases.at"),
            )
            for r in _list(versions.pop("releases"), "versions.releases")
        )
    _no_more(versions, "versions")
    evolutions = _table(t.pop("evolutions", {}), "evolutions")
    if "review_slot" in evolutions:
        kw["review_slot"] = _text(evolutions.pop("review_slot"), "evolutions.review_slot")
    _no_more(evolutions, "evolutions")
    _no_more(t, "le scénario")
    return Scenario(**kw)


def _staff(table: dict[str, Any]) -> Staff:
    kw: dict[str, Any] = {}
    for key in ("technicians", "trainers", "developers", "product_managers"):
        if key in table:
            value = table.pop(key)
            if not isinstance(value, int) or value < 0:
                raise ScenarioError(f"staff.{key} : un nombre entier positif est attendu")
            kw[key] = value
    if "hours" in table:
        kw["hours"] = _text(table.pop("hours"), "staff.hours")
    if "absences" in table:
        kw["absences"] = tuple(
            Absence(
                role=_text(a.get("role"), "staff.absences.role"),
                number=int(_number(a.get("number", 1), "staff.absences.number")),
                first=_date(a.get("from"), "staff.absences.from"),
                last=_date(a.get("to", a.get("from")), "staff.absences.to"),
                reason=str(a.get("reason", "")),
            )
            for a in _list(table.pop("absences"), "staff.absences")
        )
    if "working_hours" in table:
        kw["working_hours"] = tuple(
            WorkingHours(
                role=_text(w.get("role"), "staff.working_hours.role"),
                number=int(_number(w.get("number", 1), "staff.working_hours.number")),
                hours=_text(w.get("hours"), "staff.working_hours.hours"),
            )
            for w in _list(table.pop("working_hours"), "staff.working_hours")
        )
    _no_more(table, "staff")
    return Staff(**kw)


def _dataclass(cls: Any, table: dict[str, Any]) -> Any:
    """A dataclass of numbers, spreads, weights and shares from a TOML table."""
    where = {ArrivalProfile: "arrivals", Behaviour: "behaviour", Minutes: "durations.minutes"}
    prefix = where.get(cls, "durations.hours")
    names = {f.name: f for f in dataclasses.fields(cls)}
    kw: dict[str, Any] = {}
    for key, value in table.items():
        if key not in names:
            raise ScenarioError(f"{prefix} : clé inconnue {key!r} (permises : {sorted(names)})")
        kw[key] = _convert(value, cls, key, f"{prefix}.{key}")
    return cls(**kw)


def _convert(value: Any, cls: Any, name: str, where: str) -> Any:
    default = next(f for f in dataclasses.fields(cls) if f.name == name)
    if default.default is not dataclasses.MISSING:
        sample = default.default
    else:
        sample = cast(Callable[[], Any], default.default_factory)()
    if isinstance(sample, Spread):
        items = _list(value, where)
        if len(items) != 3:
            raise ScenarioError(f"{where} : [min, le plus probable, max] est attendu")
        try:
            return Spread(*(_number(v, where) for v in items))
        except ScenarioError as exc:
            raise ScenarioError(f"{where} : {exc}") from None
    if isinstance(sample, bool):
        if not isinstance(value, bool):
            raise ScenarioError(f"{where} : vrai ou faux (true/false) est attendu")
        return value
    if isinstance(sample, int) and not isinstance(sample, bool):
        if not isinstance(value, int):
            raise ScenarioError(f"{where} : un nombre entier est attendu")
        return value
    if isinstance(sample, float):
        return _number(value, where)
    if isinstance(sample, tuple):
        return tuple(_number(v, where) for v in _list(value, where))
    if isinstance(sample, dict):
        return {str(k): _number(v, where) for k, v in _table(value, where).items()}
    if isinstance(sample, date):
        return _date(value, where)
    return _text(value, where)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where} : une table est attendue")
    return dict(value)


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ScenarioError(f"{where} : une liste est attendue")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{where} : un nombre est attendu, pas {value!r}")
    return float(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(f"{where} : un texte est attendu")
    return value


def _date(value: Any, where: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ScenarioError(f"{where} : une date AAAA-MM-JJ est attendue, pas {value!r}")


def _moment(value: Any, where: str) -> datetime:
    """A local date and time (Europe/Paris) such as 2032-05-20T14:00."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            value = None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=BusinessCalendar().tz)
        return value
    raise ScenarioError(f"{where} : une date et une heure AAAA-MM-JJTHH:MM sont attendues")


def _no_more(table: dict[str, Any], where: str) -> None:
    if table:
        raise ScenarioError(f"{where} : clé(s) inconnue(s) {sorted(table)}")
