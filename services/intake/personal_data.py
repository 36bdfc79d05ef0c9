"""What intake holds about a person (RGPD, decision 0024): the requests they deposited and the
mails they sent (bodies, raw bytes, headers, attachments, quarantine, ledger, bounces). The
operations part calls these hooks (assistance/personal_data.py) for the export and the erasure.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from assistance.personal_data import (
    ERASED_FILENAME,
    Clues,
    Erasure,
    Found,
    Person,
    PersonalData,
    documents,
)


async def find(conn: asyncpg.Connection, address: str) -> list[Found]:
    rows = await conn.fetch(
        "SELECT id, reference FROM intake.requests WHERE lower(requester_email) = $1", address
    )
    return [Found(r["id"], r["reference"]) for r in rows]


async def recall(conn: asyncpg.Connection, person: Person) -> Clues:
    names = await conn.fetch(
        """SELECT requester_name AS n FROM intake.requests WHERE id = ANY($1::uuid[])
           UNION SELECT from_name FROM intake.mail_messages
                 WHERE $2::text IS NOT NULL AND lower(from_address) = $2""",
        person.dossiers,
        person.address,
    )
    requests = await conn.fetch(
        """SELECT subject, lower(requester_email) AS address FROM intake.requests
           WHERE id = ANY($1::uuid[])""",
        person.dossiers,
    )
    return Clues(
        names={r["n"] for r in names if r["n"]},
        addresses={r["address"] for r in requests if r["address"]},
        subjects={r["subject"] for r in requests if r["subject"]},
    )


async def export(conn: asyncpg.Connection, person: Person) -> dict[str, list[Any]]:
    return {
        "requests": await documents(
            conn,
            "SELECT to_jsonb(r) FROM intake.requests r WHERE r.id = ANY($1::uuid[]) ORDER BY 1",
            person.dossiers,
        ),
        "mails": await documents(
            conn,
            """SELECT to_jsonb(m) - 'raw' FROM intake.mail_messages m
               WHERE lower(m.from_address) = $1 ORDER BY m.received_at""",
            person.address,
        ),
        "mail_attachments": await documents(
            conn,
            """SELECT to_jsonb(a) - 'content' FROM intake.mail_attachments a
               JOIN intake.mail_messages m ON m.id = a.mail_id
               WHERE lower(m.from_address) = $1 ORDER BY a.mail_id, a.position""",
            person.address,
        ),
    }


async def files(conn: asyncpg.Connection, person: Person) -> list[tuple[str, str, bytes]]:
    rows = await conn.fetch(
        """SELECT a.id, a.filename, a.content FROM intake.mail_attachments a
           JOIN intake.mail_messages m ON m.id = a.mail_id
           WHERE lower(m.from_address) = $1 AND a.content IS NOT NULL
           ORDER BY a.mail_id, a.position""",
        person.address,
    )
    return [(str(r["id"]), r["filename"], bytes(r["content"])) for r in rows]


async def erase(conn: asyncpg.Connection, e: Erasure) -> None:
    """Their requests and every mail of their dossiers (theirs, and their colleagues' in the
    same dossiers); by address, every mail they sent (quarantined ones too), bounces and the
    ledger's envelope senders."""
    await e.execute(
        conn,
        "requests",
        """UPDATE intake.requests SET requester_email = '', requester_name = $2,
               subject = $2, description = $2, caller_phone = NULL
           WHERE id = ANY($1::uuid[])""",
        e.dossiers,
        e.tomb,
    )
    await _erase_mails(conn, "dossier_id = ANY($1::uuid[])", e.dossiers, e)
    if e.address is None:
        return
    await _erase_mails(conn, "lower(from_address) = $1", e.address, e)
    for sql in (
        "DELETE FROM intake.mail_bounces WHERE address = $1",
        "UPDATE intake.mail_ledger SET envelope_from = '' WHERE lower(envelope_from) = $1",
    ):
        await e.execute(conn, "other", sql, e.address)


async def _erase_mails(conn: asyncpg.Connection, where: str, arg: Any, e: Erasure) -> None:
    mails = [
        r["id"]
        for r in await conn.fetch(
            f"SELECT id FROM intake.mail_messages WHERE {where} AND from_address <> ''",  # noqa: S608
            arg,
        )
    ]
    if not mails:
        return
    await e.execute(
        conn,
        "mail_attachments",
        """UPDATE intake.mail_attachments SET filename = $2, content = NULL,
               dropped = 'effacé', content_id = NULL
           WHERE mail_id = ANY($1::uuid[])""",
        mails,
        ERASED_FILENAME,
    )
    await e.execute(
        conn,
        "mails_received",
        """UPDATE intake.mail_messages SET from_address = '', from_name = $2, subject = $2,
               envelope_from = CASE WHEN envelope_from IS NULL THEN NULL ELSE '' END,
               peer = NULL, raw = convert_to($2, 'UTF8'), text_body = $2,
               html_body = NULL,
               details = details - 'headers' - 'authentication' - 'return_path'
                   - 'list_headers'
           WHERE id = ANY($1::uuid[])""",
        mails,
        e.tomb,
    )
    await conn.execute(
        """UPDATE intake.mail_quarantine SET detail = $2,
               resolution = CASE WHEN resolution IS NULL THEN NULL ELSE '{}'::jsonb END
           WHERE mail_id = ANY($1::uuid[])""",
        mails,
        e.tomb,
    )
    await conn.execute(
        "UPDATE intake.mail_ledger SET envelope_from = '' WHERE mail_id = ANY($1::uuid[])", mails
    )


HOOKS = PersonalData(find=find, recall=recall, export=export, files=files, erase=erase)
