"""RGPD right of access (issue 13 item 5): everything the centre holds about one person, found
by their e-mail address, as JSON (or a ZIP with the JSON and their attachments' files).

Read-only; every export is audited. Each part exports what its own schema holds through its
hooks (`PersonalData`, given by the composition: `Runtime.personal_data`); this module adds
the kernel's: the person's account and their sign-ins. The person's dossiers are those they
requested, as the parts record them by address.
"""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from collections.abc import Sequence
from typing import Any

import asyncpg

from assistance.personal_data import Person, PersonalData, documents


async def dossiers_of(
    conn: asyncpg.Connection, address: str, holders: Sequence[PersonalData]
) -> dict[uuid.UUID, str]:
    """The person's dossiers (those they requested), id → reference, as the parts record them
    by their address (intake's requests, the read model)."""
    found: dict[uuid.UUID, str] = {}
    for holder in holders:
        if holder.find is not None:
            for dossier in await holder.find(conn, address):
                found.setdefault(dossier.id, dossier.reference)
    return found


async def _person(conn: asyncpg.Connection, email: str, holders: Sequence[PersonalData]) -> Person:
    address = email.strip().lower()
    return Person(address, list(await dossiers_of(conn, address, holders)))


async def _sections(
    conn: asyncpg.Connection, person: Person, holders: Sequence[PersonalData]
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "email": person.address,
        "user": await conn.fetchval(
            "SELECT to_jsonb(u) FROM directory.users u WHERE u.email = $1", person.address
        ),
    }
    for holder in holders:
        if holder.export is not None:
            found.update(await holder.export(conn, person))
    found["sign_ins"] = await documents(
        conn,
        """SELECT to_jsonb(a) FROM audit.events a
           WHERE a.actor_email = $1 AND starts_with(a.action, 'sign_in') ORDER BY a.at""",
        person.address,
    )
    return found


async def export(
    conn: asyncpg.Connection, email: str, holders: Sequence[PersonalData]
) -> dict[str, Any]:
    """Everything about the person with this address; empty lists when nothing is held."""
    return await _sections(conn, await _person(conn, email, holders), holders)


async def archive(conn: asyncpg.Connection, email: str, holders: Sequence[PersonalData]) -> bytes:
    """The export as a ZIP: `personne.json` and every attachment's file under `fichiers/`."""
    person = await _person(conn, email, holders)
    found = await _sections(conn, person, holders)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("personne.json", json.dumps(found, ensure_ascii=False, indent=2, default=str))
        for holder in holders:
            if holder.files is None:
                continue
            for file_id, filename, content in await holder.files(conn, person):
                z.writestr(f"fichiers/{file_id}-{_safe(filename)}", content)
    return out.getvalue()


def _safe(filename: str) -> str:
    return re.sub(r"[^\w.-]+", "_", filename)[-100:] or "fichier"
