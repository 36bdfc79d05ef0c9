"""What training holds about a person (RGPD, decision 0024): their training requests, the
appointments of their dossiers (notes, briefs) and the dossiers' history kept for the brief.
The operations part calls these hooks (assistance/personal_data.py).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from assistance.personal_data import Erasure, Person, PersonalData, documents


async def export(conn: asyncpg.Connection, person: Person) -> dict[str, list[Any]]:
    return {
        "training_requests": await documents(
            conn,
            "SELECT to_jsonb(t) FROM training.requests t WHERE lower(t.requester_email) = $1",
            person.address,
        ),
        "appointments": await documents(
            conn,
            """SELECT to_jsonb(a) FROM training.appointments a
               WHERE a.dossier_id = ANY($1::uuid[]) ORDER BY a.starts_at""",
            person.dossiers,
        ),
    }


async def erase(conn: asyncpg.Connection, e: Erasure) -> None:
    ids, tomb = e.dossiers, e.tomb
    await e.execute(
        conn,
        "training_requests",
        """UPDATE training.requests SET requester_email = '', requester_name = $2,
               subject = $2, description = $2, context = $2, need = $2,
               answer = CASE WHEN answer IS NULL THEN NULL ELSE '{}'::jsonb END
           WHERE dossier_id = ANY($1::uuid[])""",
        ids,
        tomb,
    )
    for row in await conn.fetch(
        "SELECT id, brief FROM training.appointments WHERE dossier_id = ANY($1::uuid[])", ids
    ):
        await conn.execute(
            """UPDATE training.appointments SET brief = $2,
                   notes = CASE WHEN notes IS NULL THEN NULL ELSE $3 END WHERE id = $1""",
            row["id"],
            e.scrub(row["brief"]),
            tomb,
        )
        e.add("appointments", 1)
    await e.execute(
        conn,
        "other",
        """UPDATE training.client_dossiers SET requester_email = '', subject = $2,
               resolution = CASE WHEN resolution IS NULL THEN NULL ELSE $2 END
           WHERE dossier_id = ANY($1::uuid[])""",
        ids,
        tomb,
    )
    if e.address is None:
        return
    await e.execute(
        conn,
        "training_requests",
        """UPDATE training.requests SET requester_email = '', requester_name = $2,
               subject = $2, description = $2, context = $2, need = $2
           WHERE lower(requester_email) = $1""",
        e.address,
        tomb,
    )
    await e.execute(
        conn,
        "other",
        "UPDATE training.client_dossiers SET requester_email = '' WHERE requester_email = $1",
        e.address,
    )


HOOKS = PersonalData(export=export, erase=erase)
