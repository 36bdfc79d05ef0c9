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

Each part erases what its own schema holds through its hooks (`PersonalData`, given by the
composition: `Runtime.personal_data`); this module erases what the kernel's tables hold (the
outbox, parked messages, stored answers, rate-limit counts, the audit trail, the directory).
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

import asyncpg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError as NatsNotFound
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from assistance.bus import STREAMS, Bus
from assistance.personal_data import KINDS, Clues, Erasure, Person, PersonalData
from services.operations.personal_data import dossiers_of

log = logging.getLogger(__name__)


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


async def closed(
    conn: asyncpg.Connection, ids: list[uuid.UUID], holders: Sequence[PersonalData]
) -> dict[uuid.UUID, bool]:
    """Whether each dossier is closed, for those the read model holds (a dossier accepted a
    moment ago may not be there yet)."""
    states: dict[uuid.UUID, bool] = {}
    for holder in holders:
        if holder.closed is not None and ids:
            states.update(await holder.closed(conn, ids))
    return states


# --- the person, found by address ---------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    id: uuid.UUID
    reference: str
    open: bool


async def person_dossiers(
    conn: asyncpg.Connection, address: str, holders: Sequence[PersonalData]
) -> list[Held]:
    """The person's dossiers (those they requested), by reference: open unless closed (one not
    projected yet is new)."""
    found = await dossiers_of(conn, address, holders)
    states = await closed(conn, list(found), holders)
    held = [Held(i, reference, not states.get(i, False)) for i, reference in found.items()]
    return sorted(held, key=lambda h: h.reference)


async def erase_person(
    conn: asyncpg.Connection,
    email: str,
    holders: Sequence[PersonalData],
    *,
    force: bool,
    now: datetime,
) -> Erased:
    """Erase everything about the person with this address, in the caller's transaction.
    Raises OpenDossiers (nothing done) when a dossier of theirs is open and `force` is not set."""
    address = email.strip().lower()
    found = await person_dossiers(conn, address, holders)
    opened = [h.reference for h in found if h.open]
    if opened and not force:
        raise OpenDossiers(opened)
    ids = [h.id for h in found]
    user = await conn.fetchrow(
        "SELECT id, name, role FROM directory.users WHERE lower(email) = $1", address
    )
    staff = user is not None and user["role"] != "customer"
    person = Person(address, ids, user["id"] if user is not None else None, staff=staff)
    erasure = await _erasure(conn, person, holders, now, {user["name"]} if user else set())
    if staff:
        # a staff member (a technician who left): the moment their name is replaced by, now
        # and in what the projection writes later; a second erasure keeps the first one's
        await conn.execute(
            """INSERT INTO audit.erased_staff (user_id, erased_at) VALUES ($1, $2)
               ON CONFLICT (user_id) DO NOTHING""",
            person.user_id,
            now,
        )
    await _erase(conn, erasure, holders)
    await _erase_address(conn, address, erasure)
    if user is not None:
        await _erase_account(conn, user, erasure)
    await _record(conn, ids, "request", now)
    return Erased(erasure.counts, ids, [h.id for h in found if not h.open], forced_open=opened)


# --- retention: dossiers closed long ago ------------------------------------------------------


def retention_cutoff(now: datetime, retention_days: int, reopen_window_days: int) -> datetime:
    return now - timedelta(days=retention_days + reopen_window_days)


async def due_for_retention(
    conn: asyncpg.Connection, cutoff: datetime, limit: int, holders: Sequence[PersonalData]
) -> list[uuid.UUID]:
    """The dossiers closed before `cutoff` and not erased yet, the oldest first (as the read
    model keeps their states)."""
    due: list[uuid.UUID] = []
    for holder in holders:
        if holder.expired is not None:
            due += [i for i in await holder.expired(conn, cutoff, limit) if i not in due]
    return due[:limit]


async def erase_dossiers(
    conn: asyncpg.Connection,
    ids: Sequence[uuid.UUID],
    holders: Sequence[PersonalData],
    now: datetime,
) -> Erased:
    """Retention: the personal data of these (closed) dossiers, in the caller's transaction.
    The people's accounts and their other dossiers are left as they are."""
    if not ids:
        return Erased()
    erasure = await _erasure(conn, Person(None, list(ids)), holders, now)
    await _erase(conn, erasure, holders)
    await _record(conn, ids, "retention", now)
    return Erased(erasure.counts, list(ids), list(ids))


# --- the statements -------------------------------------------------------------------------


async def _erasure(
    conn: asyncpg.Connection,
    person: Person,
    holders: Sequence[PersonalData],
    now: datetime,
    names: set[str] | None = None,
) -> Erasure:
    """The erasure as every part's hook sees it: what names the person (their names of three
    letters or more, their addresses, their dossiers' subjects) is read before anything is
    erased."""
    clues = Clues()
    for holder in holders:
        if holder.recall is not None:
            clues |= await holder.recall(conn, person)
    secrets = {n for n in clues.names if len(n.strip()) >= 3} | (names or set())
    secrets |= clues.addresses | ({person.address} if person.address else set())
    tomb = await tombstone(conn, now)
    return Erasure(person, tomb, secrets=secrets, subjects=clues.subjects)


async def _erase(
    conn: asyncpg.Connection, erasure: Erasure, holders: Sequence[PersonalData]
) -> None:
    """Every part's records of the person (their dossiers, and what their address or account
    finds), in the parts' order, then the kernel's records of their dossiers."""
    for holder in holders:
        if holder.erase is not None:
            await holder.erase(conn, erasure)
    await _erase_bus(conn, [str(i) for i in erasure.dossiers], erasure)


async def _erase_bus(conn: asyncpg.Connection, needles: list[str], erasure: Erasure) -> None:
    """The kernel's tables holding payloads: our mails to them and the events in the outbox,
    parked messages, stored answers of idempotent writes."""
    if not needles:
        return
    ids = [n.lower() for n in needles]
    needles = [needle_pattern(n) for n in needles]
    await erasure.execute(
        conn,
        "mails_sent",
        """UPDATE bus.outbox SET payload = jsonb_build_object('erased', $2::text),
               status = CASE WHEN status = 'pending' THEN 'done' ELSE status END,
               done_at = coalesce(done_at, now())
           WHERE NOT (payload ? 'erased')
             AND (ordering_key = ANY($3::text[])
                  OR EXISTS (SELECT 1 FROM unnest($1::text[]) n
                             WHERE payload::text ~* n))""",
        needles,
        erasure.tomb,
        ids,
    )
    await erasure.execute(
        conn,
        "other",
        """UPDATE bus.parked SET data = $2
           WHERE data <> $2 AND (dossier_id::text = ANY($3::text[])
               OR EXISTS (SELECT 1 FROM unnest($1::text[]) n WHERE data ~* n))""",
        needles,
        json.dumps({"erased": erasure.tomb}, ensure_ascii=False),
        ids,
    )
    await erasure.execute(
        conn,
        "other",
        """DELETE FROM web.idempotency WHERE body IS NOT NULL
             AND EXISTS (SELECT 1 FROM unnest($1::text[]) n
                         WHERE encode(body, 'escape') ~* n)""",
        needles,
    )


async def _erase_address(conn: asyncpg.Connection, address: str, erasure: Erasure) -> None:
    """What the kernel finds by the address alone: the mails we sent, rate-limit counts, the
    payloads naming it, the audit trail (the parts' hooks erased theirs)."""
    await erasure.execute(
        conn,
        "mails_sent",
        "UPDATE bus.sent_mail SET recipient = '', subject = $2 WHERE lower(recipient) = $1",
        address,
        erasure.tomb,
    )
    await erasure.execute(
        conn, "other", "DELETE FROM web.attempts WHERE key ~* $1", needle_pattern(address)
    )
    await _erase_bus(conn, [address], erasure)
    await erasure.execute(
        conn,
        "audit_events",
        """UPDATE audit.events SET
               actor_email = CASE WHEN lower(actor_email) = $1 THEN $2 ELSE actor_email END,
               target = CASE WHEN lower(target) = $1 THEN $2 ELSE target END
           WHERE lower(actor_email) = $1 OR lower(target) = $1""",
        address,
        f"sha256:{address_hash(address)}",
    )


async def _erase_account(conn: asyncpg.Connection, user: asyncpg.Record, erasure: Erasure) -> None:
    """Tokens always; the directory entry itself only for a customer (staff accounts are the
    centre's: the person's employer erases them). The site's hook revoked the sessions."""
    uid = user["id"]
    await erasure.execute(
        conn,
        "tokens",
        """UPDATE directory.tokens SET revoked_at = now(), label = ''
           WHERE user_id = $1 AND revoked_at IS NULL""",
        uid,
    )
    await conn.execute("DELETE FROM web.idempotency WHERE caller = $1", str(uid))
    if user["role"] == "customer":
        await erasure.execute(
            conn,
            "user",
            "UPDATE directory.users SET name = $2, email = $3 WHERE id = $1",
            uid,
            erasure.tomb,
            f"effacee-{uid}@efface.invalid",
        )


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
    holders: Sequence[PersonalData],
    needles: Sequence[str] = (),
) -> Cleaned:
    """Delete the closed dossiers' histories and purge the streams; record what was done in
    `audit.erasures`. What fails stays pending there for the daily retention run."""
    out = Cleaned()
    if not dossier_ids and not needles:
        return out
    ids = list(dossier_ids)
    async with pool.acquire() as conn:
        states = await closed(conn, ids, holders)
    done = [i for i in ids if states.get(i)]
    if temporal is None:
        out.pending.append("temporal")
    elif done:
        try:
            out.workflows_deleted = await delete_histories(temporal, done)
            await pool.execute(
                """UPDATE audit.erasures SET history_deleted_at = now()
                   WHERE dossier_id = ANY($1::uuid[])""",
                done,
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


async def pending_clean_ups(
    pool: asyncpg.Pool, limit: int, holders: Sequence[PersonalData]
) -> list[uuid.UUID]:
    """Erased dossiers whose history or stream messages are still to delete (a closed dossier's
    history; an open one erased by force waits for its closure), the oldest erasure first."""
    rows = await pool.fetch(
        """SELECT dossier_id, streams_purged_at IS NULL AS streams FROM audit.erasures
           WHERE streams_purged_at IS NULL OR history_deleted_at IS NULL
           ORDER BY erased_at"""
    )
    async with pool.acquire() as conn:
        states = await closed(conn, [r["dossier_id"] for r in rows if not r["streams"]], holders)
    # a dossier the read model does not hold (any more) has no workflow to wait for
    due = [r["dossier_id"] for r in rows if r["streams"] or states.get(r["dossier_id"], True)]
    return due[:limit]
