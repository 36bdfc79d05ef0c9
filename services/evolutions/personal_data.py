"""What evolutions holds about a person (RGPD, decision 0024): their evolution requests and the
mails sent to them; in the evolutions written from several requests and in the weekly reviews'
agendas, only the strings naming the person. The operations part calls these hooks
(assistance/personal_data.py).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from assistance.personal_data import Erasure, Person, PersonalData, documents


async def export(conn: asyncpg.Connection, person: Person) -> dict[str, list[Any]]:
    return {
        "evolution_requests": await documents(
            conn,
            "SELECT to_jsonb(e) FROM evolutions.requests e WHERE lower(e.requester_email) = $1",
            person.address,
        ),
    }


async def erase(conn: asyncpg.Connection, e: Erasure) -> None:
    ids, tomb = e.dossiers, e.tomb
    # the requests of their dossiers, and by address those of every dossier they asked in
    await e.execute(
        conn,
        "evolution_requests",
        """UPDATE evolutions.requests SET requester_email = '', requester_name = $2,
               subject = $2, description = $2, context = $2, need = $2
           WHERE dossier_id = ANY($1::uuid[]) OR lower(requester_email) = $3""",
        ids,
        tomb,
        e.address,
    )
    # shared with other people's requests: only the strings naming the person
    for row in await conn.fetch(
        """SELECT e.id, e.title, e.summary FROM evolutions.evolutions e
           WHERE e.id IN (SELECT evolution_id FROM evolutions.requests
                          WHERE dossier_id = ANY($1::uuid[]))""",
        ids,
    ):
        if e.naming(row["title"]) or e.naming(row["summary"]):
            await conn.execute(
                """UPDATE evolutions.evolutions SET
                       title = CASE WHEN $2 THEN $4 ELSE title END,
                       summary = CASE WHEN $3 THEN $4 ELSE summary END
                   WHERE id = $1""",
                row["id"],
                e.naming(row["title"]),
                e.naming(row["summary"]),
                tomb,
            )
            e.add("shared_documents", 1)
    for row in await conn.fetch(
        """SELECT id, agenda FROM evolutions.reviews
           WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) n WHERE strpos(agenda::text, n) > 0)""",
        [str(i) for i in ids],
    ):
        agenda = e.scrub_shared(row["agenda"])
        if agenda != row["agenda"]:
            await conn.execute(
                "UPDATE evolutions.reviews SET agenda = $2 WHERE id = $1", row["id"], agenda
            )
            e.add("shared_documents", 1)
    if e.address is None:
        return
    await e.execute(
        conn,
        "mails_sent",
        """UPDATE evolutions.sent_mail SET recipient = '', purpose = $2
           WHERE lower(recipient) = $1""",
        e.address,
        tomb,
    )


HOOKS = PersonalData(export=export, erase=erase)
