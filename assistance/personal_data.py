"""Personal data (RGPD, issue 13 item 5; decisions 0020 and 0024): what a part holding some
declares through its `Part` (`personal_data=PersonalData(...)`), and what its hooks share: the
tombstone, the scrubbing of JSON documents, the counts by kind.

The operations part exports and erases a person (or, for retention, some dossiers) by calling
the hooks of every part the composition declares (`Runtime.personal_data`), in the parts'
order, in one transaction; each part's SQL stays in its own module, on its own schema (no part
reads another's tables: tests/test_architecture.py). The kernel's own tables (directory, bus,
web, audit) are the operations part's to export and erase.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncpg

ERASED_FILENAME = "fichier-efface"
# Keys of JSON documents (details, timeline data, briefs) whose values statistics need and which
# hold no one's words: every other string of the document is replaced by the tombstone.
KEPT_KEYS = {
    "id",
    "reference",
    "software",
    "kind",
    "status",
    "state",
    "version",
    "channel",
    "visibility",
    "type",
    "outcome",
    "template",
    "audience",
    "waiting_for",
    "dmarc",
    "by",
}
KEPT_SUFFIXES = ("_id", "_at", "_due", "_ids", "_kind", "_status", "_version")

# The kinds an erasure counts, always all of them (a second erasure answers zeros).
KINDS = (
    "dossiers",
    "requests",
    "timeline_entries",
    "mails_received",
    "mail_attachments",
    "mails_sent",
    "site_attachments",
    "ratings",
    "training_requests",
    "appointments",
    "evolution_requests",
    "bug_answers",
    "shared_documents",
    "follow_links",
    "sign_in_links",
    "sessions",
    "tokens",
    "user",
    "audit_events",
    "other",
)


@dataclass(frozen=True)
class Person:
    """Whom an export or an erasure is about: their address (lower-case; None when retention
    erases dossiers, not a person), their dossiers (or the dossiers retention erases), their
    account when they have one."""

    address: str | None
    dossiers: list[uuid.UUID]
    user_id: uuid.UUID | None = None
    staff: bool = False  # a staff member: their name as an author is erased too


@dataclass(frozen=True)
class Found:
    """A dossier of the person, as a part records it by their address."""

    id: uuid.UUID
    reference: str


@dataclass
class Clues:
    """What names the person in documents shared with other people, found before anything is
    erased: their names and addresses, the subjects of their dossiers."""

    names: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)
    subjects: set[str] = field(default_factory=set)

    def __ior__(self, other: Clues) -> Clues:
        self.names |= other.names
        self.addresses |= other.addresses
        self.subjects |= other.subjects
        return self


@dataclass
class Erasure:
    """One erasure as each part's `erase` hook sees it: whom (`person`), the tombstone to
    write, what names them in shared documents (`naming`), and the counts by kind (`add`)."""

    person: Person
    tomb: str
    secrets: set[str] = field(default_factory=set)  # names and addresses (3 characters or more)
    subjects: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    def __post_init__(self) -> None:
        self.secrets = {s for s in self.secrets if s and len(s) >= 3}
        self._words = [s.lower() for s in self.secrets]

    @property
    def dossiers(self) -> list[uuid.UUID]:
        return self.person.dossiers

    @property
    def address(self) -> str | None:
        return self.person.address

    def add(self, kind: str, status: str | int) -> None:
        """Count what a statement changed (its status, `UPDATE 3`, or a number)."""
        n = status if isinstance(status, int) else int(str(status).rpartition(" ")[2] or 0)
        self.counts[kind] += n

    async def execute(self, conn: asyncpg.Connection, kind: str, sql: str, *args: Any) -> None:
        """Run one statement of the erasure, counting the rows it changed as `kind`."""
        self.add(kind, await conn.execute(sql, *args))

    def naming(self, text: str | None) -> bool:
        """Whether a string of a shared document names the person or repeats a subject of
        their dossiers."""
        return bool(text) and (
            text in self.subjects or any(w in text.lower() for w in self._words)  # type: ignore[union-attr]
        )

    def scrub(self, value: Any) -> Any:
        """A document the person's dossier owns, scrubbed (`scrub`)."""
        return scrub(value, self.tomb)

    def scrub_shared(self, value: Any) -> Any:
        """A document shared with others: only the strings naming the person replaced."""
        return scrub_naming(value, self.tomb, self.naming)


# The hooks. Each takes the caller's connection (one transaction for the whole export or
# erasure) and touches its own part's schema only.
Find = Callable[["asyncpg.Connection", str], Awaitable[list[Found]]]
Recall = Callable[["asyncpg.Connection", Person], Awaitable[Clues]]
Export = Callable[["asyncpg.Connection", Person], Awaitable[dict[str, list[Any]]]]
Files = Callable[["asyncpg.Connection", Person], Awaitable[list[tuple[str, str, bytes]]]]
Erase = Callable[["asyncpg.Connection", Erasure], Awaitable[None]]
Closed = Callable[["asyncpg.Connection", list[uuid.UUID]], Awaitable[dict[uuid.UUID, bool]]]
Expired = Callable[["asyncpg.Connection", datetime, int], Awaitable[list[uuid.UUID]]]


@dataclass(frozen=True)
class PersonalData:
    """The hooks of a part that holds personal data; a part declaring none holds none.

    - `find`: the person's dossiers it records by their address;
    - `recall`: their names, addresses and subjects it holds (`Clues`), before the erasure;
    - `export`: the sections of the export (name → JSON documents);
    - `files`: the files of the export, (id, file name, content);
    - `erase`: replace what it holds about them by the tombstone, counting by kind;
    - `closed` and `expired`, from the part keeping the dossiers' states (the read model):
      whether each dossier it knows is closed, and the dossiers closed before a time and not
      erased yet, the oldest first (retention).
    """

    find: Find | None = None
    recall: Recall | None = None
    export: Export | None = None
    files: Files | None = None
    erase: Erase | None = None
    closed: Closed | None = None
    expired: Expired | None = None


async def documents(conn: asyncpg.Connection, query: str, *args: Any) -> list[Any]:
    """The first column of every row: an export's section (`SELECT to_jsonb(t) ...`)."""
    return [r[0] for r in await conn.fetch(query, *args)]


# --- JSON documents -----------------------------------------------------------------------------

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][\d:.]+([+-]\d{2}:?\d{2}|Z)?)?$")


def _kept(key: str | None) -> bool:
    return key is not None and (key in KEPT_KEYS or key.endswith(KEPT_SUFFIXES))


def scrub(value: Any, tomb: str, key: str | None = None) -> Any:
    """Every string of a document the person's dossier owns, but ids, dates and the kinds
    statistics read, replaced by the tombstone."""
    if isinstance(value, dict):
        return {k: scrub(v, tomb, k) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, tomb, key) for v in value]
    if isinstance(value, str):
        if not value or _kept(key) or _UUID.match(value) or _DATE.match(value):
            return value
        return tomb
    return value


def scrub_naming(value: Any, tomb: str, naming: Callable[[str | None], bool]) -> Any:
    """In a document shared with others, only the strings naming the person."""
    if isinstance(value, dict):
        return {k: scrub_naming(v, tomb, naming) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_naming(v, tomb, naming) for v in value]
    if isinstance(value, str) and naming(value):
        return tomb
    return value
