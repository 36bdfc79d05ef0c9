"""RGPD erasure and retention (issue 13 item 5, docs/decisions/0024).

The person's identity and the contents of what they wrote or received are replaced, in one
transaction, by a tombstone (« Personne effacée le JJ/MM/AAAA », Paris time); what statistics
need stays: dates, states, kinds, softwares, organisation ids, timings, breaches, scores. Each
erased dossier gets a row in `audit.erasures`; after the transaction, the Temporal executions of
its workflow are deleted and the NATS messages naming it are removed from the streams (both
retried by the daily retention run until done).

Two ways in: an administrator names a person by address (`erase_person`: their dossiers, every
mail they sent, their account if a customer's, their sessions and tokens), or retention names
dossiers closed long ago (`erase_dossiers`: only those dossiers' personal data).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError as NatsNotFound
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from assistance.bus import STREAMS, Bus

log = logging.getLogger(__name__)

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

# The kinds counted in the answer, always all of them (a second erasure answers zeros).
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


async def tombstone(conn: asyncpg.Connection, at: datetime) -> str:
    """The tombstone of an erasure at `at` (« Personne effacée le JJ/MM/AAAA », Paris date),
    worded once, in SQL (`audit.tombstone`): the projection's triggers word an erased dossier's
    late entries with the same function of the moment `_record` keeps."""
    text: str = await conn.fetchval("SELECT audit.tombstone($1)", at)
    return text


def address_hash(email: str) -> str:
    """What the audit keeps of an erased address."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


class OpenDossiers(Exception):
    def __init__(self, references: list[str]) -> None:
        super().__init__(", ".join(references))
        self.references = references


@dataclass
class Erased:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    dossiers: list[uuid.UUID] = field(default_factory=list)  # every dossier erased
    closed: list[uuid.UUID] = field(default_factory=list)  # their histories can be deleted
    forced_open: list[str] = field(default_factory=list)  # references erased while open

    def add(self, kind: str, status: str | int) -> None:
        n = status if isinstance(status, int) else int(str(status).rpartition(" ")[2] or 0)
        self.counts[kind] += n


# --- the person, found by address ---------------------------------------------------------------


async def person_dossiers(conn: asyncpg.Connection, address: str) -> list[asyncpg.Record]:
    """The person's dossiers (those they requested): id, reference, open or not."""
    return await conn.fetch(
        """SELECT r.id, r.reference, coalesce(d.status, 'new') <> 'closed' AS open
           FROM intake.requests r LEFT JOIN dossier.dossiers d ON d.id = r.id
           WHERE lower(r.requester_email) = $1
           UNION
           SELECT d.id, d.reference, d.status <> 'closed'
           FROM dossier.dossiers d WHERE lower(d.requester_email) = $1
           ORDER BY 2""",
        address,
    )


async def erase_person(
    conn: asyncpg.Connection, email: str, *, force: bool, now: datetime
) -> Erased:
    """Erase everything about the person with this address, in the caller's transaction.
    Raises OpenDossiers (nothing done) when a dossier of theirs is open and `force` is not set."""
    address = email.strip().lower()
    found = await person_dossiers(conn, address)
    opened = [r["reference"] for r in found if r["open"]]
    if opened and not force:
        raise OpenDossiers(opened)
    ids = [r["id"] for r in found]
    user = await conn.fetchrow(
        "SELECT id, name, role FROM directory.users WHERE lower(email) = $1", address
    )
    names = await _names(conn, ids, address)
    if user is not None:
        names.add(user["name"])
    done = Erased(forced_open=opened)
    tomb = await tombstone(conn, now)
    await _erase_dossiers(conn, ids, tomb, done, names | {address})
    done.dossiers = ids
    done.closed = [r["id"] for r in found if not r["open"]]
    await _erase_address(conn, address, tomb, done, names)
    if user is not None:
        await _erase_account(conn, user, tomb, done)
        if user["role"] != "customer":
            await _erase_staff_names(conn, user["id"], now, done)
    await _record(conn, ids, "request", now)
    return done


# --- retention: dossiers closed long ago ------------------------------------------------------


def retention_cutoff(now: datetime, retention_days: int, reopen_window_days: int) -> datetime:
    return now - timedelta(days=retention_days + reopen_window_days)


async def due_for_retention(
    conn: asyncpg.Connection, cutoff: datetime, limit: int
) -> list[uuid.UUID]:
    rows = await conn.fetch(
        """SELECT d.id FROM dossier.dossiers d
           WHERE d.status = 'closed' AND d.closed_at < $1
             AND NOT EXISTS (SELECT 1 FROM audit.erasures e WHERE e.dossier_id = d.id)
           ORDER BY d.closed_at, d.id LIMIT $2""",
        cutoff,
        limit,
    )
    return [r["id"] for r in rows]


async def erase_dossiers(
    conn: asyncpg.Connection, ids: Sequence[uuid.UUID], now: datetime
) -> Erased:
    """Retention: the personal data of these (closed) dossiers, in the caller's transaction.
    The people's accounts and their other dossiers are left as they are."""
    done = Erased()
    names = await _names(conn, ids, None)
    emails = {
        r["e"]
        for r in await conn.fetch(
            "SELECT lower(requester_email) AS e FROM intake.requests WHERE id = ANY($1::uuid[])",
            list(ids),
        )
        if r["e"]
    }
    await _erase_dossiers(conn, ids, await tombstone(conn, now), done, names | emails)
    done.dossiers = done.closed = list(ids)
    await _record(conn, ids, "retention", now)
    return done


# --- the statements -------------------------------------------------------------------------


async def _names(
    conn: asyncpg.Connection, ids: Sequence[uuid.UUID], address: str | None
) -> set[str]:
    rows = await conn.fetch(
        """SELECT requester_name AS n FROM intake.requests WHERE id = ANY($1::uuid[])
           UNION SELECT requester_name FROM dossier.dossiers WHERE id = ANY($1::uuid[])
           UNION SELECT from_name FROM intake.mail_messages
                 WHERE $2::text IS NOT NULL AND lower(from_address) = $2""",
        list(ids),
        address,
    )
    return {r["n"] for r in rows if r["n"] and len(r["n"].strip()) >= 3}


async def _erase_dossiers(
    conn: asyncpg.Connection,
    ids: Sequence[uuid.UUID],
    tomb: str,
    done: Erased,
    secrets: set[str],
) -> None:
    """The dossiers' own records, in every schema."""
    if not ids:
        return
    ids = list(ids)
    subjects = {
        r["s"]
        for r in await conn.fetch(
            """SELECT subject AS s FROM intake.requests WHERE id = ANY($1::uuid[])
               UNION SELECT subject FROM dossier.dossiers WHERE id = ANY($1::uuid[])""",
            ids,
        )
        if r["s"]
    }
    done.add(
        "requests",
        await conn.execute(
            """UPDATE intake.requests SET requester_email = '', requester_name = $2,
                   subject = $2, description = $2, caller_phone = NULL
               WHERE id = ANY($1::uuid[])""",
            ids,
            tomb,
        ),
    )
    for row in await conn.fetch(
        "SELECT id, details FROM dossier.dossiers WHERE id = ANY($1::uuid[])", ids
    ):
        await conn.execute(
            """UPDATE dossier.dossiers SET requester_email = '', requester_name = $2,
                   subject = $2, description = $2,
                   resolution = CASE WHEN resolution IS NULL THEN NULL ELSE $2 END,
                   details = $3, updated_at = now()
               WHERE id = $1""",
            row["id"],
            tomb,
            scrub(row["details"], tomb),
        )
        done.add("dossiers", 1)
    for row in await conn.fetch(
        "SELECT event_id, data FROM dossier.timeline WHERE dossier_id = ANY($1::uuid[])", ids
    ):
        await conn.execute(
            """UPDATE dossier.timeline SET text = CASE WHEN text = '' THEN '' ELSE $2 END,
                   author = CASE WHEN author IS NULL THEN NULL ELSE $2 END, data = $3
               WHERE event_id = $1""",
            row["event_id"],
            tomb,
            scrub(row["data"], tomb),
        )
        done.add("timeline_entries", 1)
    # every mail of the dossiers (theirs, and their colleagues' in the same dossiers)
    await _erase_mails(conn, "dossier_id = ANY($1::uuid[])", ids, tomb, done)
    done.add(
        "mails_sent",
        await conn.execute(
            """UPDATE dossier.outbound_mail SET recipient = '', subject = $2
               WHERE dossier_id = ANY($1::uuid[]) AND recipient <> ''""",
            ids,
            tomb,
        ),
    )
    done.add(
        "other",
        await conn.execute(
            """UPDATE dossier.staff_notices SET subject = $2, text = $2
               WHERE dossier_id = ANY($1::uuid[])""",
            ids,
            tomb,
        ),
    )
    done.add(
        "site_attachments",
        await conn.execute(
            """UPDATE site.attachments SET filename = $2, content = ''::bytea, size = 0,
                   uploader_name = $3, declared_type = ''
               WHERE dossier_id = ANY($1::uuid[])""",
            ids,
            ERASED_FILENAME,
            tomb,
        ),
    )
    done.add(
        "ratings",
        await conn.execute(
            "UPDATE site.ratings SET comment = '' WHERE dossier_id = ANY($1::uuid[])", ids
        ),
    )
    done.add(
        "follow_links",
        await conn.execute(
            """INSERT INTO dossier.follow_revocations (dossier_id, revoked_at)
               SELECT unnest($1::uuid[]), now()
               ON CONFLICT (dossier_id) DO UPDATE SET revoked_at = now()""",
            ids,
        ),
    )
    done.add(
        "training_requests",
        await conn.execute(
            """UPDATE training.requests SET requester_email = '', requester_name = $2,
                   subject = $2, description = $2, context = $2, need = $2,
                   answer = CASE WHEN answer IS NULL THEN NULL ELSE '{}'::jsonb END
               WHERE dossier_id = ANY($1::uuid[])""",
            ids,
            tomb,
        ),
    )
    for row in await conn.fetch(
        "SELECT id, brief FROM training.appointments WHERE dossier_id = ANY($1::uuid[])", ids
    ):
        await conn.execute(
            """UPDATE training.appointments SET brief = $2,
                   notes = CASE WHEN notes IS NULL THEN NULL ELSE $3 END WHERE id = $1""",
            row["id"],
            scrub(row["brief"], tomb),
            tomb,
        )
        done.add("appointments", 1)
    done.add(
        "other",
        await conn.execute(
            """UPDATE training.client_dossiers SET requester_email = '', subject = $2,
                   resolution = CASE WHEN resolution IS NULL THEN NULL ELSE $2 END
               WHERE dossier_id = ANY($1::uuid[])""",
            ids,
            tomb,
        ),
    )
    done.add(
        "evolution_requests",
        await conn.execute(
            """UPDATE evolutions.requests SET requester_email = '', requester_name = $2,
                   subject = $2, description = $2, context = $2, need = $2
               WHERE dossier_id = ANY($1::uuid[])""",
            ids,
            tomb,
        ),
    )
    done.add(
        "bug_answers",
        await conn.execute(
            """UPDATE bugs.answers SET text = $2,
                   author = CASE WHEN author IS NULL THEN NULL ELSE $2 END
               WHERE dossier_id = ANY($1::uuid[])""",
            ids,
            tomb,
        ),
    )
    done.add(
        "other",
        await conn.execute(
            """UPDATE bugs.workarounds SET subject = $2 WHERE dossier_id = ANY($1::uuid[])
                   AND subject IS NOT NULL""",
            ids,
            tomb,
        ),
    )
    # documents shared with other people (a review's agenda, a bug or an evolution written from
    # several requests, a parked message): only the strings naming the person or repeating
    # their dossiers' subjects are replaced
    await _erase_shared(conn, ids, tomb, done, secrets, subjects)
    needles = [str(i) for i in ids]
    await _erase_bus(conn, needles, tomb, done)


async def _erase_mails(
    conn: asyncpg.Connection, where: str, arg: Any, tomb: str, done: Erased
) -> None:
    mails = [
        r["id"]
        for r in await conn.fetch(
            f"SELECT id FROM intake.mail_messages WHERE {where} AND from_address <> ''",  # noqa: S608
            arg,
        )
    ]
    if not mails:
        return
    done.add(
        "mail_attachments",
        await conn.execute(
            """UPDATE intake.mail_attachments SET filename = $2, content = NULL,
                   dropped = 'effacé', content_id = NULL
               WHERE mail_id = ANY($1::uuid[])""",
            mails,
            ERASED_FILENAME,
        ),
    )
    done.add(
        "mails_received",
        await conn.execute(
            """UPDATE intake.mail_messages SET from_address = '', from_name = $2, subject = $2,
                   envelope_from = CASE WHEN envelope_from IS NULL THEN NULL ELSE '' END,
                   peer = NULL, raw = convert_to($2, 'UTF8'), text_body = $2,
                   html_body = NULL,
                   details = details - 'headers' - 'authentication' - 'return_path'
                       - 'list_headers'
               WHERE id = ANY($1::uuid[])""",
            mails,
            tomb,
        ),
    )
    await conn.execute(
        """UPDATE intake.mail_quarantine SET detail = $2,
               resolution = CASE WHEN resolution IS NULL THEN NULL ELSE '{}'::jsonb END
           WHERE mail_id = ANY($1::uuid[])""",
        mails,
        tomb,
    )
    await conn.execute(
        "UPDATE intake.mail_ledger SET envelope_from = '' WHERE mail_id = ANY($1::uuid[])", mails
    )


async def _erase_shared(
    conn: asyncpg.Connection,
    ids: list[uuid.UUID],
    tomb: str,
    done: Erased,
    secrets: set[str],
    subjects: set[str],
) -> None:
    secrets = {s for s in secrets if s and len(s) >= 3}
    if not secrets and not subjects:
        return
    words = [s.lower() for s in secrets]

    def naming(text: str | None) -> bool:
        return bool(text) and (
            text in subjects or any(w in text.lower() for w in words)  # type: ignore[union-attr]
        )

    bug_ids = [
        r["bug_id"]
        for r in await conn.fetch(
            "SELECT bug_id FROM bugs.bug_dossiers WHERE dossier_id = ANY($1::uuid[])", ids
        )
    ]
    for row in await conn.fetch(
        "SELECT id, title, description FROM bugs.bugs WHERE id = ANY($1::uuid[])", bug_ids
    ):
        if naming(row["title"]) or naming(row["description"]):
            await conn.execute(
                """UPDATE bugs.bugs SET
                       title = CASE WHEN $2 THEN $4 ELSE title END,
                       description = CASE WHEN $3 THEN $4 ELSE description END
                   WHERE id = $1""",
                row["id"],
                naming(row["title"]),
                naming(row["description"]),
                tomb,
            )
            done.add("shared_documents", 1)
    for row in await conn.fetch(
        """SELECT bug_id, seq, data FROM bugs.history WHERE bug_id = ANY($1::uuid[])""", bug_ids
    ):
        data = scrub_naming(row["data"], tomb, naming)
        if data != row["data"]:
            await conn.execute(
                "UPDATE bugs.history SET data = $3 WHERE bug_id = $1 AND seq = $2",
                row["bug_id"],
                row["seq"],
                data,
            )
            done.add("shared_documents", 1)
    for row in await conn.fetch(
        """SELECT e.id, e.title, e.summary FROM evolutions.evolutions e
           WHERE e.id IN (SELECT evolution_id FROM evolutions.requests
                          WHERE dossier_id = ANY($1::uuid[]))""",
        ids,
    ):
        if naming(row["title"]) or naming(row["summary"]):
            await conn.execute(
                """UPDATE evolutions.evolutions SET
                       title = CASE WHEN $2 THEN $4 ELSE title END,
                       summary = CASE WHEN $3 THEN $4 ELSE summary END
                   WHERE id = $1""",
                row["id"],
                naming(row["title"]),
                naming(row["summary"]),
                tomb,
            )
            done.add("shared_documents", 1)
    needles = [str(i) for i in ids]
    for row in await conn.fetch(
        """SELECT id, agenda FROM evolutions.reviews
           WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) n WHERE strpos(agenda::text, n) > 0)""",
        needles,
    ):
        agenda = scrub_naming(row["agenda"], tomb, naming)
        if agenda != row["agenda"]:
            await conn.execute(
                "UPDATE evolutions.reviews SET agenda = $2 WHERE id = $1", row["id"], agenda
            )
            done.add("shared_documents", 1)


async def _erase_bus(conn: asyncpg.Connection, needles: list[str], tomb: str, done: Erased) -> None:
    """The kernel's tables holding payloads: our mails to them and the events in the outbox,
    parked messages, stored answers of idempotent writes."""
    if not needles:
        return
    ids = [n.lower() for n in needles]
    needles = [needle_pattern(n) for n in needles]
    done.add(
        "mails_sent",
        await conn.execute(
            """UPDATE bus.outbox SET payload = jsonb_build_object('erased', $2::text),
                   status = CASE WHEN status = 'pending' THEN 'done' ELSE status END,
                   done_at = coalesce(done_at, now())
               WHERE NOT (payload ? 'erased')
                 AND (ordering_key = ANY($3::text[])
                      OR EXISTS (SELECT 1 FROM unnest($1::text[]) n
                                 WHERE payload::text ~* n))""",
            needles,
            tomb,
            ids,
        ),
    )
    done.add(
        "other",
        await conn.execute(
            """UPDATE bus.parked SET data = $2
               WHERE data <> $2 AND (dossier_id::text = ANY($3::text[])
                   OR EXISTS (SELECT 1 FROM unnest($1::text[]) n WHERE data ~* n))""",
            needles,
            json.dumps({"erased": tomb}, ensure_ascii=False),
            ids,
        ),
    )
    done.add(
        "other",
        await conn.execute(
            """DELETE FROM web.idempotency WHERE body IS NOT NULL
                 AND EXISTS (SELECT 1 FROM unnest($1::text[]) n
                             WHERE encode(body, 'escape') ~* n)""",
            needles,
        ),
    )


async def _erase_address(
    conn: asyncpg.Connection, address: str, tomb: str, done: Erased, names: set[str]
) -> None:
    """What is found by the address alone: mails outside their dossiers (quarantined), training
    and evolution requests, mails we sent, bounces, rate-limit counts, the audit trail."""
    await _erase_mails(conn, "lower(from_address) = $1", address, tomb, done)
    done.add(
        "training_requests",
        await conn.execute(
            """UPDATE training.requests SET requester_email = '', requester_name = $2,
                   subject = $2, description = $2, context = $2, need = $2
               WHERE lower(requester_email) = $1""",
            address,
            tomb,
        ),
    )
    done.add(
        "evolution_requests",
        await conn.execute(
            """UPDATE evolutions.requests SET requester_email = '', requester_name = $2,
                   subject = $2, description = $2, context = $2, need = $2
               WHERE lower(requester_email) = $1""",
            address,
            tomb,
        ),
    )
    for sql in (
        "UPDATE dossier.outbound_mail SET recipient = '', subject = $2 WHERE lower(recipient) = $1",
        "UPDATE bus.sent_mail SET recipient = '', subject = $2 WHERE lower(recipient) = $1",
        "UPDATE evolutions.sent_mail SET recipient = '', purpose = $2 WHERE lower(recipient) = $1",
    ):
        done.add("mails_sent", await conn.execute(sql, address, tomb))
    for sql in (
        "DELETE FROM dossier.follow_link_mails WHERE lower(email) = $1",
        "DELETE FROM intake.mail_bounces WHERE address = $1",
        "UPDATE intake.mail_ledger SET envelope_from = '' WHERE lower(envelope_from) = $1",
        "UPDATE training.client_dossiers SET requester_email = '' WHERE requester_email = $1",
    ):
        done.add("other", await conn.execute(sql, address))
    done.add(
        "other",
        await conn.execute("DELETE FROM web.attempts WHERE key ~* $1", needle_pattern(address)),
    )
    await _erase_bus(conn, [address], tomb, done)
    hashed = address_hash(address)
    done.add(
        "audit_events",
        await conn.execute(
            """UPDATE audit.events SET
                   actor_email = CASE WHEN lower(actor_email) = $1 THEN $2 ELSE actor_email END,
                   target = CASE WHEN lower(target) = $1 THEN $2 ELSE target END
               WHERE lower(actor_email) = $1 OR lower(target) = $1""",
            address,
            f"sha256:{hashed}",
        ),
    )


async def _erase_account(
    conn: asyncpg.Connection, user: asyncpg.Record, tomb: str, done: Erased
) -> None:
    """Sessions, sign-in links, tokens always; the directory entry itself only for a customer
    (staff accounts are the centre's: the person's employer erases them)."""
    uid = user["id"]
    done.add(
        "sessions",
        await conn.execute(
            """UPDATE site.sessions SET revoked_at = coalesce(revoked_at, now()),
                   client_address = '', user_agent = ''
               WHERE user_id = $1 AND (revoked_at IS NULL OR client_address <> ''
                                        OR user_agent <> '')""",
            uid,
        ),
    )
    done.add(
        "sign_in_links",
        await conn.execute("DELETE FROM site.sign_in_links WHERE user_id = $1", uid),
    )
    await conn.execute("DELETE FROM site.preferences WHERE user_id = $1", uid)
    done.add(
        "tokens",
        await conn.execute(
            """UPDATE directory.tokens SET revoked_at = now(), label = ''
               WHERE user_id = $1 AND revoked_at IS NULL""",
            uid,
        ),
    )
    await conn.execute("DELETE FROM web.idempotency WHERE caller = $1", str(uid))
    if user["role"] == "customer":
        done.add(
            "user",
            await conn.execute(
                "UPDATE directory.users SET name = $2, email = $3 WHERE id = $1",
                uid,
                tomb,
                f"effacee-{uid}@efface.invalid",
            ),
        )
    await conn.execute(
        "UPDATE site.attachments SET uploader_name = $2 WHERE uploaded_by = $1", uid, tomb
    )


async def _erase_staff_names(
    conn: asyncpg.Connection, user_id: uuid.UUID, now: datetime, done: Erased
) -> None:
    """A staff member (a technician who left): their name as the author of timeline entries,
    in the entries' texts and as a dossier's technician, now and in what the projection writes
    later (services/dossier/migrations/070_erased_staff.sql). A second erasure keeps the first
    one's moment, so its tombstone."""
    await conn.execute(
        """INSERT INTO audit.erased_staff (user_id, erased_at) VALUES ($1, $2)
           ON CONFLICT (user_id) DO NOTHING""",
        user_id,
        now,
    )
    changed = await conn.fetchrow("SELECT * FROM dossier.erase_staff_names($1)", user_id)
    done.add("timeline_entries", int(changed["changed_entries"]))
    done.add("other", int(changed["changed_dossiers"]))


async def _record(
    conn: asyncpg.Connection, ids: Iterable[uuid.UUID], cause: str, now: datetime
) -> None:
    """Each erased dossier with the erasure's moment: the one its tombstone was worded from."""
    await conn.execute(
        """INSERT INTO audit.erasures (dossier_id, cause, erased_at)
           SELECT unnest($1::uuid[]), $2, $3
           ON CONFLICT (dossier_id) DO UPDATE SET erased_at = $3,
               history_deleted_at = NULL, streams_purged_at = NULL""",
        list(ids),
        cause,
        now,
    )


def needle_pattern(needle: str) -> str:
    """A regular expression (Python's and PostgreSQL's alike) finding `needle` as a whole
    address or id: erasing ann@x.fr must not touch joann@x.fr's messages."""
    return r"(?<![a-z0-9._%+-])" + re.escape(needle.lower()) + r"(?![a-z0-9_-]|\.[a-z0-9])"


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


def scrub_naming(value: Any, tomb: str, naming: Any) -> Any:
    """In a document shared with others, only the strings naming the person."""
    if isinstance(value, dict):
        return {k: scrub_naming(v, tomb, naming) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_naming(v, tomb, naming) for v in value]
    if isinstance(value, str) and naming(value):
        return tomb
    return value


# --- after the transaction: Temporal's histories and the streams --------------------------------


async def delete_histories(client: Client, dossier_ids: Sequence[uuid.UUID]) -> int:
    """Every run of each dossier's workflow deleted (the Temporal UI no longer shows it);
    a workflow already gone is not an error. Raises RPCError when Temporal cannot answer."""
    deleted = 0
    service = client.workflow_service
    for dossier_id in dossier_ids:
        workflow_id = str(dossier_id)
        runs = [
            execution.run_id
            async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'")
        ]
        # every run the visibility store lists, then the latest (which it may not list yet)
        for run_id in [*runs, ""]:
            try:
                await service.delete_workflow_execution(
                    DeleteWorkflowExecutionRequest(
                        namespace=client.namespace,
                        workflow_execution=WorkflowExecution(
                            workflow_id=workflow_id, run_id=run_id
                        ),
                    )
                )
                deleted += 1 if run_id or not runs else 0
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
    return deleted


async def purge_streams(bus: Bus, needles: Sequence[str]) -> int:
    """Delete from every stream the messages naming one of `needles` (dossier ids, an address):
    a rebuild of the read model would otherwise bring the erased data back."""
    wanted = [re.compile(needle_pattern(n), re.I) for n in needles if n]
    if not wanted:
        return 0
    deleted = 0
    for stream, subjects in STREAMS.items():
        try:
            info = await bus.js.stream_info(stream)
        except NatsNotFound:
            continue
        if not info.state.messages:
            continue
        sub = await bus.js.pull_subscribe(
            subjects[0],
            durable=None,
            stream=stream,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=60.0,
            ),
        )
        doomed: list[int] = []
        try:
            while True:
                try:
                    msgs = await sub.fetch(500, timeout=2)
                except NatsTimeout:
                    break
                for msg in msgs:
                    data = msg.data.decode("utf-8", "replace")
                    if any(w.search(data) for w in wanted):
                        doomed.append(msg.metadata.sequence.stream)
                if msgs and msgs[-1].metadata.num_pending == 0:
                    break
        finally:
            await sub.unsubscribe()
        for seq in doomed:
            try:
                await bus.js.delete_msg(stream, seq)
                deleted += 1
            except NatsNotFound:
                pass
    return deleted


@dataclass
class Cleaned:
    workflows_deleted: int = 0
    stream_messages_deleted: int = 0
    pending: list[str] = field(default_factory=list)  # what could not be done now


async def clean_up(
    pool: asyncpg.Pool,
    temporal: Client | None,
    bus: Bus | None,
    dossier_ids: Sequence[uuid.UUID],
    needles: Sequence[str] = (),
) -> Cleaned:
    """Delete the closed dossiers' histories and purge the streams; record what was done in
    `audit.erasures`. What fails stays pending there for the daily retention run."""
    out = Cleaned()
    if not dossier_ids and not needles:
        return out
    ids = list(dossier_ids)
    closed = [
        r["id"]
        for r in await pool.fetch(
            "SELECT id FROM dossier.dossiers WHERE id = ANY($1::uuid[]) AND status = 'closed'",
            ids,
        )
    ]
    if temporal is None:
        out.pending.append("temporal")
    elif closed:
        try:
            out.workflows_deleted = await delete_histories(temporal, closed)
            await pool.execute(
                """UPDATE audit.erasures SET history_deleted_at = now()
                   WHERE dossier_id = ANY($1::uuid[])""",
                closed,
            )
        except (RPCError, RuntimeError) as exc:
            log.warning("erasure: Temporal histories not deleted yet: %r", exc)
            out.pending.append("temporal")
    if bus is None or not bus.connected:
        out.pending.append("nats")
    else:
        try:
            out.stream_messages_deleted = await purge_streams(
                bus, [*(str(i) for i in ids), *needles]
            )
            await pool.execute(
                """UPDATE audit.erasures SET streams_purged_at = now()
                   WHERE dossier_id = ANY($1::uuid[])""",
                ids,
            )
        except Exception as exc:  # noqa: BLE001 - left pending, finished by the retention run
            log.warning("erasure: NATS messages not purged yet: %r", exc)
            out.pending.append("nats")
    return out


async def pending_clean_ups(pool: asyncpg.Pool, limit: int) -> list[uuid.UUID]:
    """Erased dossiers whose history or stream messages are still to delete (a closed dossier's
    history; an open one erased by force waits for its closure)."""
    rows = await pool.fetch(
        """SELECT e.dossier_id FROM audit.erasures e
           LEFT JOIN dossier.dossiers d ON d.id = e.dossier_id
           WHERE e.streams_purged_at IS NULL
              OR (e.history_deleted_at IS NULL AND coalesce(d.status, 'closed') = 'closed')
           ORDER BY e.erased_at LIMIT $1""",
        limit,
    )
    return [r["dossier_id"] for r in rows]
