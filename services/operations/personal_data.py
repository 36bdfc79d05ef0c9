"""RGPD right of access (issue 13 item 5): everything the centre holds about one person, found
by their e-mail address, as JSON (or a ZIP with the JSON and their attachments' files).

Read-only, across the services' schemas; every export is audited. The person's dossiers are
those they requested; of each, the timeline entries meant for the customer (the staff's
internal notes are the centre's working papers, not the person's data).
"""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from typing import Any

import asyncpg

# (what, query): $1 is the address (lower-case); or $2, the person's dossier ids, alone.
_SECTIONS: tuple[tuple[str, str], ...] = (
    (
        "user",
        "SELECT to_jsonb(u) FROM directory.users u WHERE u.email = $1",
    ),
    (
        "requests",
        "SELECT to_jsonb(r) FROM intake.requests r WHERE r.id = ANY($2::uuid[]) ORDER BY 1",
    ),
    (
        "dossiers",
        "SELECT to_jsonb(d) FROM dossier.dossiers d WHERE d.id = ANY($2::uuid[]) ORDER BY 1",
    ),
    (
        "timeline",
        """SELECT to_jsonb(t) FROM dossier.timeline t
           WHERE t.dossier_id = ANY($2::uuid[]) AND t.visibility = 'customer'
           ORDER BY t.at""",
    ),
    (
        "mails",
        """SELECT to_jsonb(m) - 'raw' FROM intake.mail_messages m
           WHERE lower(m.from_address) = $1 ORDER BY m.received_at""",
    ),
    (
        "mail_attachments",
        """SELECT to_jsonb(a) - 'content' FROM intake.mail_attachments a
           JOIN intake.mail_messages m ON m.id = a.mail_id
           WHERE lower(m.from_address) = $1 ORDER BY a.mail_id, a.position""",
    ),
    (
        "site_attachments",
        """SELECT to_jsonb(a) - 'content' FROM site.attachments a
           WHERE a.dossier_id = ANY($2::uuid[]) ORDER BY a.uploaded_at""",
    ),
    (
        "ratings",
        "SELECT to_jsonb(r) FROM site.ratings r WHERE r.dossier_id = ANY($2::uuid[])",
    ),
    (
        "training_requests",
        "SELECT to_jsonb(t) FROM training.requests t WHERE lower(t.requester_email) = $1",
    ),
    (
        "appointments",
        """SELECT to_jsonb(a) FROM training.appointments a
           WHERE a.dossier_id = ANY($2::uuid[]) ORDER BY a.starts_at""",
    ),
    (
        "evolution_requests",
        "SELECT to_jsonb(e) FROM evolutions.requests e WHERE lower(e.requester_email) = $1",
    ),
    (
        "sign_ins",
        """SELECT to_jsonb(a) FROM audit.events a
           WHERE a.actor_email = $1 AND starts_with(a.action, 'sign_in') ORDER BY a.at""",
    ),
)


async def export(conn: asyncpg.Connection, email: str) -> dict[str, Any]:
    """Everything about the person with this address; empty lists when nothing is held."""
    address = email.strip().lower()
    dossiers = [
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM intake.requests WHERE lower(requester_email) = $1", address
        )
    ]
    found: dict[str, Any] = {"email": address}
    for what, query in _SECTIONS:
        by_dossier = "$2" in query
        query = query.replace("$2", "$1")
        rows = [r[0] for r in await conn.fetch(query, dossiers if by_dossier else address)]
        found[what] = (rows[0] if rows else None) if what == "user" else rows
    return found


async def archive(conn: asyncpg.Connection, email: str) -> bytes:
    """The export as a ZIP: `personne.json` and every attachment's file under `fichiers/`."""
    found = await export(conn, email)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("personne.json", json.dumps(found, ensure_ascii=False, indent=2, default=str))
        for table, section in (
            ("intake.mail_attachments", "mail_attachments"),
            ("site.attachments", "site_attachments"),
        ):
            for meta in found[section]:
                content = await conn.fetchval(
                    f"SELECT content FROM {table} WHERE id = $1",  # noqa: S608 - fixed names
                    uuid.UUID(str(meta["id"])),
                )
                if content is not None:
                    z.writestr(f"fichiers/{meta['id']}-{_safe(meta['filename'])}", bytes(content))
    return out.getvalue()


def _safe(filename: str) -> str:
    return re.sub(r"[^\w.-]+", "_", filename)[-100:] or "fichier"
