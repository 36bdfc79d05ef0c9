"""What bugs holds about a person (RGPD, decision 0024): the answers of their dossiers and the
workarounds found for them; in the bugs written from several dossiers and in their history,
only the strings naming the person. The operations part calls this hook
(assistance/personal_data.py).
"""

from __future__ import annotations

import asyncpg

from assistance.personal_data import Erasure, PersonalData


async def erase(conn: asyncpg.Connection, e: Erasure) -> None:
    ids, tomb = e.dossiers, e.tomb
    await e.execute(
        conn,
        "bug_answers",
        """UPDATE bugs.answers SET text = $2,
               author = CASE WHEN author IS NULL THEN NULL ELSE $2 END
           WHERE dossier_id = ANY($1::uuid[])""",
        ids,
        tomb,
    )
    await e.execute(
        conn,
        "other",
        """UPDATE bugs.workarounds SET subject = $2 WHERE dossier_id = ANY($1::uuid[])
               AND subject IS NOT NULL""",
        ids,
        tomb,
    )
    # shared with other people's dossiers: only the strings naming the person
    bug_ids = [
        r["bug_id"]
        for r in await conn.fetch(
            "SELECT bug_id FROM bugs.bug_dossiers WHERE dossier_id = ANY($1::uuid[])", ids
        )
    ]
    for row in await conn.fetch(
        "SELECT id, title, description FROM bugs.bugs WHERE id = ANY($1::uuid[])", bug_ids
    ):
        if e.naming(row["title"]) or e.naming(row["description"]):
            await conn.execute(
                """UPDATE bugs.bugs SET
                       title = CASE WHEN $2 THEN $4 ELSE title END,
                       description = CASE WHEN $3 THEN $4 ELSE description END
                   WHERE id = $1""",
                row["id"],
                e.naming(row["title"]),
                e.naming(row["description"]),
                tomb,
            )
            e.add("shared_documents", 1)
    for row in await conn.fetch(
        "SELECT bug_id, seq, data FROM bugs.history WHERE bug_id = ANY($1::uuid[])", bug_ids
    ):
        data = e.scrub_shared(row["data"])
        if data != row["data"]:
            await conn.execute(
                "UPDATE bugs.history SET data = $3 WHERE bug_id = $1 AND seq = $2",
                row["bug_id"],
                row["seq"],
                data,
            )
            e.add("shared_documents", 1)


HOOKS = PersonalData(erase=erase)
