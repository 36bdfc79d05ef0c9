"""The bugs service's SQL: its own schema only (`bugs.*`), `$n` parameters throughout.

Writers take a connection inside the caller's transaction; every fact about a bug goes to
its history and, in the same transaction, to the outbox (`record_fact`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, TypeAlias

import asyncpg

from assistance.clock import PARIS
from assistance.events import Event
from assistance.outbox import enqueue_event
from services.bugs.domain import STATE_LABELS, BugFacts, State
from services.bugs.models import (
    Answer,
    BugOut,
    BugRef,
    BugSummary,
    Fix,
    HistoryEntry,
    LinkedDossier,
    Person,
    Release,
    Reproduction,
    WorkaroundOut,
)

Conn: TypeAlias = asyncpg.Connection
Reader: TypeAlias = asyncpg.Pool | asyncpg.Connection
SOURCE = "bugs"  # the outbox source the relay sends


def _at(at: datetime) -> datetime:
    """Shown in Europe/Paris."""
    return at.astimezone(PARIS)


# --- bugs ------------------------------------------------------------------------------------


async def lock_bug(conn: Conn, bug_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM bugs.bugs WHERE id = $1 FOR UPDATE", bug_id)


def facts(row: asyncpg.Record) -> BugFacts:
    return BugFacts(
        state=State(row["state"]),
        developer_id=row["developer_id"],
        developer_name=row["developer_name"],
        duplicate_of=row["duplicate_of"],
    )


async def create_bug(
    conn: Conn,
    *,
    software: str,
    title: str,
    description: str,
    versions: list[str],
    previous_bug_id: uuid.UUID | None = None,
) -> asyncpg.Record:
    number = await conn.fetchval("SELECT nextval('bugs.bug_number')")
    row = await conn.fetchrow(
        """INSERT INTO bugs.bugs (id, reference, software, title, description,
               affected_versions, state, previous_bug_id)
           VALUES ($1, $2, $3, $4, $5, $6, 'new', $7) RETURNING *""",
        uuid.uuid4(),
        f"B-{number:06d}",
        software,
        title,
        description,
        versions,
        previous_bug_id,
    )
    assert row is not None
    return row


async def update_bug(conn: Conn, bug_id: uuid.UUID, **fields: Any) -> None:
    names = list(fields)
    assignments = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(names))
    await conn.execute(
        f"UPDATE bugs.bugs SET {assignments} WHERE id = $1", bug_id, *fields.values()
    )


async def add_versions(conn: Conn, row: asyncpg.Record, versions: list[str]) -> None:
    known = list(row["affected_versions"])
    merged = known + [v for v in dict.fromkeys(versions) if v and v not in known]
    if merged != known:
        await update_bug(conn, row["id"], affected_versions=merged)


async def record_fact(
    conn: Conn,
    bug_id: uuid.UUID,
    what: str,
    *,
    actor: str | None,
    dossier_ids: list[uuid.UUID] | None = None,
    **data: Any,
) -> Event:
    """Publish `bugs.bug.<what>` through the outbox, in the caller's transaction.

    The event id `<bug id>:<n>` is fixed when written, so a resend is dropped as a duplicate.
    `dossier_ids` defaults to every dossier linked to the bug."""
    row = await conn.fetchrow(
        "UPDATE bugs.bugs SET seq = seq + 1 WHERE id = $1 RETURNING seq, reference, software, "
        "state",
        bug_id,
    )
    assert row is not None
    if dossier_ids is None:
        dossier_ids = await linked_dossier_ids(conn, bug_id)
    now = datetime.now(UTC)
    payload = {
        "bug_id": str(bug_id),
        "bug_reference": row["reference"],
        "software": row["software"],
        "state": row["state"],
        "dossier_ids": [str(d) for d in dossier_ids],
        **data,
    }
    event = Event(
        id=f"{bug_id}:{row['seq']}", type=f"bugs.bug.{what}", occurred_at=now, data=payload
    )
    await conn.execute(
        "INSERT INTO bugs.history (bug_id, seq, kind, actor, data, at) VALUES ($1, $2, $3, $4, "
        "$5, $6)",
        bug_id,
        row["seq"],
        what,
        actor,
        event.model_dump(mode="json")["data"],
        now,
    )
    await enqueue_event(conn, SOURCE, event)
    return event


# --- dossiers --------------------------------------------------------------------------------


async def linked_dossier_ids(conn: Reader, bug_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT dossier_id FROM bugs.bug_dossiers WHERE bug_id = $1 ORDER BY linked_at, dossier_id",
        bug_id,
    )
    return [r["dossier_id"] for r in rows]


async def current_link(conn: Conn, dossier_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM bugs.bug_dossiers WHERE dossier_id = $1 FOR UPDATE", dossier_id
    )


async def link(
    conn: Conn,
    bug_id: uuid.UUID,
    dossier_id: uuid.UUID,
    *,
    via: str,
    reference: str | None = None,
    version: str | None = None,
    linked_by: str | None = None,
) -> None:
    """Link the dossier to this bug (moving it from another one if need be)."""
    await conn.execute(
        """INSERT INTO bugs.bug_dossiers (dossier_id, bug_id, reference, version, via, linked_by)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (dossier_id) DO UPDATE SET bug_id = EXCLUDED.bug_id,
               reference = coalesce(EXCLUDED.reference, bugs.bug_dossiers.reference),
               version = coalesce(EXCLUDED.version, bugs.bug_dossiers.version),
               via = EXCLUDED.via, linked_by = EXCLUDED.linked_by, linked_at = now()""",
        dossier_id,
        bug_id,
        reference,
        version,
        via,
        linked_by,
    )


async def complete_link(
    conn: Conn, dossier_id: uuid.UUID, reference: str, version: str | None
) -> None:
    """What the hand-over tells about a dossier a technician linked before it arrived."""
    await conn.execute(
        "UPDATE bugs.bug_dossiers SET reference = $2, version = coalesce(version, $3) "
        "WHERE dossier_id = $1",
        dossier_id,
        reference,
        version,
    )


async def handover_answer(conn: Conn, dossier_id: uuid.UUID, attempt: int) -> dict[str, Any] | None:
    answer: dict[str, Any] | None = await conn.fetchval(
        "SELECT answer FROM bugs.handovers WHERE dossier_id = $1 AND attempt = $2",
        dossier_id,
        attempt,
    )
    return answer


async def remember_handover(
    conn: Conn, dossier_id: uuid.UUID, attempt: int, bug_id: uuid.UUID, answer: dict[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO bugs.handovers (dossier_id, attempt, bug_id, answer) VALUES ($1, $2, $3, $4)",
        dossier_id,
        attempt,
        bug_id,
        answer,
    )


async def gate_passed(conn: Reader, dossier_id: uuid.UUID) -> bool:
    """R8: the dossier's workaround (or the reason there is none) is recorded."""
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM bugs.workarounds WHERE dossier_id = $1
                                  AND (text IS NOT NULL OR none_reason IS NOT NULL))
                   OR EXISTS (SELECT 1 FROM bugs.handovers WHERE dossier_id = $1)""",
            dossier_id,
        )
    )


async def lock_dossier(conn: Conn, dossier_id: uuid.UUID) -> None:
    """Serialise the writers of one dossier's link (hand-overs and technicians)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", str(dossier_id))


# --- workarounds -----------------------------------------------------------------------------


async def upsert_workaround(
    conn: Conn, dossier_id: uuid.UUID, recorded_at: datetime, **fields: str | None
) -> None:
    """Merge what one source knows (the DOSSIER stream or the hand-over); never erase."""
    names = ["reference", "software", "version", "subject", "text", "none_reason"]
    values = [fields.get(n) for n in names]
    await conn.execute(
        f"""INSERT INTO bugs.workarounds (dossier_id, recorded_at, {", ".join(names)})
            VALUES ($1, $2, {", ".join(f"${i + 3}" for i in range(len(names)))})
            ON CONFLICT (dossier_id) DO UPDATE SET
            {", ".join(f"{n} = coalesce(EXCLUDED.{n}, bugs.workarounds.{n})" for n in names)},
            recorded_at = least(bugs.workarounds.recorded_at, EXCLUDED.recorded_at)""",
        dossier_id,
        recorded_at,
        *values,
    )


_WORKAROUND_SELECT = """
    SELECT w.dossier_id, w.reference, w.software, w.version, w.subject, w.text, w.recorded_at,
           b.id AS bug_id, b.reference AS bug_reference, b.state AS bug_state,
           b.fix_version, b.released_version
    FROM bugs.workarounds w
    LEFT JOIN bugs.bug_dossiers d ON d.dossier_id = w.dossier_id
    LEFT JOIN bugs.bugs b ON b.id = d.bug_id"""


def _workaround(row: asyncpg.Record) -> WorkaroundOut:
    bug = None
    if row["bug_id"] is not None:
        bug = BugRef(
            id=row["bug_id"],
            reference=row["bug_reference"],
            state=row["bug_state"],
            fix_version=row["fix_version"],
            released_version=row["released_version"],
        )
    return WorkaroundOut(
        dossier_id=row["dossier_id"],
        reference=row["reference"],
        software=row["software"],
        version=row["version"],
        subject=row["subject"],
        text=row["text"],
        recorded_at=_at(row["recorded_at"]),
        bug=bug,
    )


async def search_workarounds(
    conn: Reader,
    *,
    software: str | None,
    version: str | None,
    q: str | None,
    limit: int,
    offset: int,
) -> tuple[list[WorkaroundOut], int]:
    """The workaround base (R8): by software, version, and words (French full text)."""
    clauses, args = ["w.text IS NOT NULL"], []
    if software:
        args.append(software)
        clauses.append(f"w.software = ${len(args)}")
    if version:
        args.append(version)
        clauses.append(f"w.version = ${len(args)}")
    order = "w.recorded_at DESC, w.dossier_id"
    if q:
        args.append(q)
        clauses.append(f"w.search @@ websearch_to_tsquery('french', ${len(args)})")
        order = f"ts_rank(w.search, websearch_to_tsquery('french', ${len(args)})) DESC, {order}"
    where = " AND ".join(clauses)
    total = await conn.fetchval(f"SELECT count(*) FROM bugs.workarounds w WHERE {where}", *args)
    rows = await conn.fetch(
        f"{_WORKAROUND_SELECT} WHERE {where} ORDER BY {order} "
        f"LIMIT {int(limit)} OFFSET {int(offset)}",
        *args,
    )
    return [_workaround(r) for r in rows], total


# --- reading bugs ----------------------------------------------------------------------------


def _summary_fields(row: asyncpg.Record, dossier_count: int) -> dict[str, Any]:
    state = State(row["state"])
    developer = (
        Person(id=row["developer_id"], name=row["developer_name"] or "")
        if row["developer_id"]
        else None
    )
    return {
        "id": row["id"],
        "reference": row["reference"],
        "software": row["software"],
        "title": row["title"],
        "state": state.value,
        "state_label": STATE_LABELS[state],
        "affected_versions": list(row["affected_versions"]),
        "developer": developer,
        "dossier_count": dossier_count,
        "fix_version": row["fix_version"],
        "released_version": row["released_version"],
        "reported_at": _at(row["reported_at"]),
        "last_activity_at": _at(row["last_activity_at"]),
    }


async def list_bugs(
    conn: Reader,
    *,
    state: str | None,
    software: str | None,
    developer: uuid.UUID | None,
    q: str | None,
    limit: int,
    offset: int,
) -> tuple[list[BugSummary], int]:
    clauses, args = ["TRUE"], []
    for column, value in (("state", state), ("software", software), ("developer_id", developer)):
        if value:
            args.append(value)
            clauses.append(f"b.{column} = ${len(args)}")
    order = "b.reported_at, b.reference"
    if q:
        args.append(q)
        clauses.append(
            f"(b.search @@ websearch_to_tsquery('french', ${len(args)}) "
            f"OR b.reference = upper(${len(args)}))"
        )
        order = f"ts_rank(b.search, websearch_to_tsquery('french', ${len(args)})) DESC, {order}"
    where = " AND ".join(clauses)
    total = await conn.fetchval(f"SELECT count(*) FROM bugs.bugs b WHERE {where}", *args)
    rows = await conn.fetch(
        f"""SELECT b.*, (SELECT count(*) FROM bugs.bug_dossiers d WHERE d.bug_id = b.id) AS n
            FROM bugs.bugs b WHERE {where} ORDER BY {order}
            LIMIT {int(limit)} OFFSET {int(offset)}""",
        *args,
    )
    return [BugSummary(**_summary_fields(r, r["n"])) for r in rows], total


async def get_bug(conn: Reader, bug_id: uuid.UUID) -> BugOut | None:
    row = await conn.fetchrow("SELECT * FROM bugs.bugs WHERE id = $1", bug_id)
    if row is None:
        return None
    dossiers = await conn.fetch(
        "SELECT * FROM bugs.bug_dossiers WHERE bug_id = $1 ORDER BY linked_at, dossier_id", bug_id
    )
    workarounds = await conn.fetch(
        f"{_WORKAROUND_SELECT} WHERE d.bug_id = $1 AND w.text IS NOT NULL ORDER BY w.recorded_at",
        bug_id,
    )
    answers = await conn.fetch(
        "SELECT * FROM bugs.answers WHERE bug_id = $1 ORDER BY at, event_id", bug_id
    )
    history = await conn.fetch("SELECT * FROM bugs.history WHERE bug_id = $1 ORDER BY seq", bug_id)
    escalations = await conn.fetch(
        "SELECT escalated_at FROM bugs.escalations WHERE bug_id = $1 ORDER BY escalated_at", bug_id
    )
    return BugOut(
        **_summary_fields(row, len(dossiers)),
        description=row["description"],
        reproduction=Reproduction(steps=row["reproduction_steps"], environment=row["environment"])
        if row["reproduction_steps"]
        else None,
        questions=row["questions"],
        answers=[
            Answer(dossier_id=a["dossier_id"], author=a["author"], text=a["text"], at=_at(a["at"]))
            for a in answers
        ],
        diagnosis=row["diagnosis"],
        fix=Fix(**fix_fields(row)) if row["fix_version"] else None,
        release=Release(version=row["released_version"], released_at=_at(row["released_at"]))
        if row["released_version"]
        else None,
        duplicate_of=row["duplicate_of"],
        previous_bug_id=row["previous_bug_id"],
        dossiers=[
            LinkedDossier(
                dossier_id=d["dossier_id"],
                reference=d["reference"],
                version=d["version"],
                via=d["via"],
                linked_at=_at(d["linked_at"]),
            )
            for d in dossiers
        ],
        workarounds=[_workaround(w) for w in workarounds],
        escalations=[_at(e["escalated_at"]) for e in escalations],
        history=[
            HistoryEntry(
                seq=h["seq"], kind=h["kind"], actor=h["actor"], data=h["data"], at=_at(h["at"])
            )
            for h in history
        ],
    )


def fix_fields(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "version": row["fix_version"],
        "change_reference": row["change_reference"],
        "notes": row["fix_notes"] or "",
        "completed_at": _at(row["fix_completed_at"]),
        "completed_by": row["fix_completed_by"] or "",
    }


# --- releases, answers, escalations, the inbox -----------------------------------------------


async def record_release(conn: Conn, software: str, version: str, released_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO bugs.releases (software, version, released_at) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        software,
        version,
        released_at,
    )


async def released_versions(conn: Reader, software: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT version, released_at FROM bugs.releases WHERE software = $1", software
    )


async def fixed_bugs(conn: Conn, software: str) -> list[asyncpg.Record]:
    """Bugs of this software whose fix waits for a release, locked."""
    return await conn.fetch(
        "SELECT * FROM bugs.bugs WHERE software = $1 AND state = 'fix_completed' "
        "ORDER BY reported_at FOR UPDATE",
        software,
    )


async def first_handling(conn: Conn, consumer: str, event_id: str) -> bool:
    """True the first time this consumer sees this event (in the caller's transaction)."""
    result = await conn.execute(
        "INSERT INTO bugs.inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        consumer,
        event_id,
    )
    return bool(result.endswith(" 1"))


async def record_answer(
    conn: Conn,
    event_id: str,
    bug_id: uuid.UUID,
    dossier_id: uuid.UUID,
    author: str | None,
    text: str,
    at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO bugs.answers (event_id, bug_id, dossier_id, author, text, at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
        event_id,
        bug_id,
        dossier_id,
        author,
        text,
        at,
    )
    await conn.execute(
        "UPDATE bugs.bugs SET last_answer_at = greatest(last_answer_at, $2) WHERE id = $1",
        bug_id,
        at,
    )


async def escalation_candidates(conn: Reader) -> list[asyncpg.Record]:
    """Bugs where the developers owe a move, with what the quiet-period rule needs."""
    return await conn.fetch(
        """SELECT b.id, b.reference, b.software, b.title, b.state, b.developer_name,
                  b.last_activity_at, b.last_answer_at,
                  (SELECT count(*) FROM bugs.bug_dossiers d WHERE d.bug_id = b.id) AS dossiers
           FROM bugs.bugs b
           WHERE b.state IN ('new', 'reproduced', 'diagnosed', 'not_reproducible')
           ORDER BY b.reported_at"""
    )
