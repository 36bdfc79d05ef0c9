"""What the dossier read model holds about a person (RGPD, decision 0024): their dossiers, the
timelines, the mails and notices the dossiers' steps sent, the follow links. It also keeps the
dossiers' states, which the erasure (open or closed) and the retention (closed long ago) read.
The operations part calls these hooks (assistance/personal_data.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from assistance.personal_data import Clues, Erasure, Found, Person, PersonalData, documents


async def find(conn: asyncpg.Connection, address: str) -> list[Found]:
    rows = await conn.fetch(
        "SELECT id, reference FROM dossier.dossiers WHERE lower(requester_email) = $1", address
    )
    return [Found(r["id"], r["reference"]) for r in rows]


async def closed(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, bool]:
    rows = await conn.fetch(
        "SELECT id, status = 'closed' AS closed FROM dossier.dossiers WHERE id = ANY($1::uuid[])",
        ids,
    )
    return {r["id"]: r["closed"] for r in rows}


async def expired(conn: asyncpg.Connection, before: datetime, limit: int) -> list[uuid.UUID]:
    rows = await conn.fetch(
        """SELECT d.id FROM dossier.dossiers d
           WHERE d.status = 'closed' AND d.closed_at < $1
             AND NOT EXISTS (SELECT 1 FROM audit.erasures e WHERE e.dossier_id = d.id)
           ORDER BY d.closed_at, d.id LIMIT $2""",
        before,
        limit,
    )
    return [r["id"] for r in rows]


async def recall(conn: asyncpg.Connection, person: Person) -> Clues:
    rows = await conn.fetch(
        "SELECT requester_name, subject FROM dossier.dossiers WHERE id = ANY($1::uuid[])",
        person.dossiers,
    )
    return Clues(
        names={r["requester_name"] for r in rows if r["requester_name"]},
        subjects={r["subject"] for r in rows if r["subject"]},
    )


async def export(conn: asyncpg.Connection, person: Person) -> dict[str, list[Any]]:
    """The dossiers, and of their timelines the entries meant for the customer (the staff's
    internal notes are the centre's working papers, not the person's data)."""
    return {
        "dossiers": await documents(
            conn,
            "SELECT to_jsonb(d) FROM dossier.dossiers d WHERE d.id = ANY($1::uuid[]) ORDER BY 1",
            person.dossiers,
        ),
        "timeline": await documents(
            conn,
            """SELECT to_jsonb(t) FROM dossier.timeline t
               WHERE t.dossier_id = ANY($1::uuid[]) AND t.visibility = 'customer'
               ORDER BY t.at""",
            person.dossiers,
        ),
    }


async def erase(conn: asyncpg.Connection, e: Erasure) -> None:
    """The dossiers (identity, words, JSON details scrubbed), their timelines, the mails and
    notices their steps sent, their follow links (revoked); by address, the mails sent to it
    and the follow-link mails it asked for."""
    ids, tomb = e.dossiers, e.tomb
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
            e.scrub(row["details"]),
        )
        e.add("dossiers", 1)
    for row in await conn.fetch(
        "SELECT event_id, data FROM dossier.timeline WHERE dossier_id = ANY($1::uuid[])", ids
    ):
        await conn.execute(
            """UPDATE dossier.timeline SET text = CASE WHEN text = '' THEN '' ELSE $2 END,
                   author = CASE WHEN author IS NULL THEN NULL ELSE $2 END, data = $3
               WHERE event_id = $1""",
            row["event_id"],
            tomb,
            e.scrub(row["data"]),
        )
        e.add("timeline_entries", 1)
    # the mails of their dossiers, and by address every mail sent to them
    await e.execute(
        conn,
        "mails_sent",
        """UPDATE dossier.outbound_mail SET recipient = '', subject = $2
           WHERE (dossier_id = ANY($1::uuid[]) AND recipient <> '') OR lower(recipient) = $3""",
        ids,
        tomb,
        e.address,
    )
    await e.execute(
        conn,
        "other",
        """UPDATE dossier.staff_notices SET subject = $2, text = $2
           WHERE dossier_id = ANY($1::uuid[])""",
        ids,
        tomb,
    )
    await e.execute(
        conn,
        "follow_links",
        """INSERT INTO dossier.follow_revocations (dossier_id, revoked_at)
           SELECT unnest($1::uuid[]), now()
           ON CONFLICT (dossier_id) DO UPDATE SET revoked_at = now()""",
        ids,
    )
    if e.person.staff and e.person.user_id is not None:
        # a staff member (a technician who left): their name as the author of timeline
        # entries, in the entries' texts and as a dossier's technician, now and in what the
        # projection writes later (migrations/070_erased_staff.sql)
        changed = await conn.fetchrow(
            "SELECT * FROM dossier.erase_staff_names($1)", e.person.user_id
        )
        e.add("timeline_entries", int(changed["changed_entries"]))
        e.add("other", int(changed["changed_dossiers"]))
    if e.address is None:
        return
    await e.execute(
        conn, "other", "DELETE FROM dossier.follow_link_mails WHERE lower(email) = $1", e.address
    )


HOOKS = PersonalData(
    find=find,
    recall=recall,
    export=export,
    erase=erase,
    closed=closed,
    expired=expired,
)
