"""What the site holds about a person (RGPD, decision 0024): the files uploaded to their
dossiers and their ratings; for their account, its sessions, sign-in links and preferences, and
the name on the files they uploaded. The operations part calls these hooks
(assistance/personal_data.py).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from assistance.personal_data import ERASED_FILENAME, Erasure, Person, PersonalData, documents


async def export(conn: asyncpg.Connection, person: Person) -> dict[str, list[Any]]:
    return {
        "site_attachments": await documents(
            conn,
            """SELECT to_jsonb(a) - 'content' FROM site.attachments a
               WHERE a.dossier_id = ANY($1::uuid[]) ORDER BY a.uploaded_at""",
            person.dossiers,
        ),
        "ratings": await documents(
            conn,
            "SELECT to_jsonb(r) FROM site.ratings r WHERE r.dossier_id = ANY($1::uuid[])",
            person.dossiers,
        ),
    }


async def files(conn: asyncpg.Connection, person: Person) -> list[tuple[str, str, bytes]]:
    rows = await conn.fetch(
        """SELECT id, filename, content FROM site.attachments
           WHERE dossier_id = ANY($1::uuid[]) AND content IS NOT NULL ORDER BY uploaded_at""",
        person.dossiers,
    )
    return [(str(r["id"]), r["filename"], bytes(r["content"])) for r in rows]


async def erase(conn: asyncpg.Connection, e: Erasure) -> None:
    ids, tomb = e.dossiers, e.tomb
    await e.execute(
        conn,
        "site_attachments",
        """UPDATE site.attachments SET filename = $2, content = ''::bytea, size = 0,
               uploader_name = $3, declared_type = ''
           WHERE dossier_id = ANY($1::uuid[])""",
        ids,
        ERASED_FILENAME,
        tomb,
    )
    await e.execute(
        conn,
        "ratings",
        "UPDATE site.ratings SET comment = '' WHERE dossier_id = ANY($1::uuid[])",
        ids,
    )
    uid = e.person.user_id
    if uid is None:
        return
    await e.execute(
        conn,
        "sessions",
        """UPDATE site.sessions SET revoked_at = coalesce(revoked_at, now()),
               client_address = '', user_agent = ''
           WHERE user_id = $1 AND (revoked_at IS NULL OR client_address <> ''
                                    OR user_agent <> '')""",
        uid,
    )
    await e.execute(conn, "sign_in_links", "DELETE FROM site.sign_in_links WHERE user_id = $1", uid)
    await conn.execute("DELETE FROM site.preferences WHERE user_id = $1", uid)
    await conn.execute(
        "UPDATE site.attachments SET uploader_name = $2 WHERE uploaded_by = $1", uid, tomb
    )


HOOKS = PersonalData(export=export, files=files, erase=erase)
