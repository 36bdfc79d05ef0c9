"""The site's own tables (schema `site`): ratings at closure and attachments."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True)
class Upload:
    filename: str
    declared_type: str
    content: bytes


async def add_attachments(
    pool: asyncpg.Pool,
    dossier_id: uuid.UUID,
    uploads: list[Upload],
    uploaded_by: uuid.UUID | None,
    uploader_name: str,
    submission: str = "",
    entry_at: datetime | None = None,
) -> None:
    """Store the files sent with a form. With the form's submission key, a file already stored
    for that submission (the same name and bytes) is not stored again: the form sent twice
    leaves one copy."""
    async with pool.acquire() as conn, conn.transaction():
        for upload in uploads:
            await conn.execute(
                """INSERT INTO site.attachments (id, dossier_id, filename, declared_type, size,
                       sha256, content, uploaded_by, uploader_name, submission, entry_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                   ON CONFLICT (dossier_id, submission, sha256, filename) DO NOTHING""",
                uuid.uuid4(),
                dossier_id,
                upload.filename,
                upload.declared_type[:200],
                len(upload.content),
                hashlib.sha256(upload.content).digest(),
                upload.content,
                uploaded_by,
                uploader_name,
                submission or None,
                entry_at,
            )


async def list_attachments(pool: asyncpg.Pool, dossier_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """SELECT id, filename, size, uploader_name, uploaded_at, entry_at FROM site.attachments
           WHERE dossier_id = $1 ORDER BY uploaded_at, filename""",
        dossier_id,
    )
    return [dict(r) for r in rows]


async def get_attachment(pool: asyncpg.Pool, attachment_id: uuid.UUID) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT dossier_id, filename, content FROM site.attachments WHERE id = $1",
        attachment_id,
    )


async def rate(
    pool: asyncpg.Pool,
    *,
    dossier: dict[str, Any],
    closed_at: datetime,
    score: int,
    comment: str,
    rated_by: uuid.UUID,
) -> bool:
    """Record the rating of this closure; False if it was already rated."""
    result = await pool.execute(
        """INSERT INTO site.ratings (dossier_id, closed_at, reference, software, organisation_id,
               score, comment, rated_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (dossier_id, closed_at) DO NOTHING""",
        uuid.UUID(str(dossier["id"])),
        closed_at,
        dossier["reference"],
        dossier["software"],
        uuid.UUID(dossier["organisation_id"]) if dossier.get("organisation_id") else None,
        score,
        comment,
        rated_by,
    )
    return result.endswith("1")


async def rating_of(
    pool: asyncpg.Pool, dossier_id: uuid.UUID, closed_at: datetime
) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        "SELECT score, comment, rated_at FROM site.ratings WHERE dossier_id = $1 "
        "AND closed_at = $2",
        dossier_id,
        closed_at,
    )
    return dict(row) if row else None


async def satisfaction(pool: asyncpg.Pool, since: datetime) -> dict[str, Any]:
    """Ratings since `since`: how many of each score, and the average."""
    rows = await pool.fetch(
        "SELECT score, count(*) AS n FROM site.ratings WHERE rated_at >= $1 GROUP BY score",
        since,
    )
    counts = {score: 0 for score in range(1, 6)}
    for r in rows:
        counts[r["score"]] = r["n"]
    total = sum(counts.values())
    average = sum(s * n for s, n in counts.items()) / total if total else None
    return {"counts": counts, "total": total, "average": average}


async def preference(pool: asyncpg.Pool, user_id: uuid.UUID, name: str) -> dict[str, Any]:
    """A user's saved choices for a page (the queue's sort and filters), or {}."""
    found = await pool.fetchval(
        "SELECT value FROM site.preferences WHERE user_id = $1 AND name = $2", user_id, name
    )
    return dict(found) if isinstance(found, dict) else {}


async def save_preference(
    pool: asyncpg.Pool, user_id: uuid.UUID, name: str, value: dict[str, Any]
) -> None:
    await pool.execute(
        """INSERT INTO site.preferences (user_id, name, value) VALUES ($1, $2, $3)
           ON CONFLICT (user_id, name) DO UPDATE SET value = $3, updated_at = now()""",
        user_id,
        name,
        value,
    )
