"""What anyone can read (R13: no token, 24/7): documentation per version (R11) and the weekly
announcements of functional evolutions (R12)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from assistance import directory
from assistance.errors import NotFound
from services.evolutions import domain, repo
from services.evolutions.models import (
    AnnouncedEvolution,
    AnnouncedRelease,
    DocPageOut,
    DocPageRef,
    DocsIndexOut,
    DocVersionOut,
    WeeklyAnnouncement,
)
from services.evolutions.releases import require_software

LATEST = "latest"


# --- R11: documentation per version -------------------------------------------------------------


async def docs_index(conn: asyncpg.Connection, software: str) -> DocsIndexOut:
    await require_software(conn, software)
    releases = await repo.releases_of(conn, software)
    pages = await repo.doc_pages_of(conn, software)
    by_version: dict[str, list[DocPageRef]] = defaultdict(list)
    for p in pages:
        by_version[p["version"]].append(DocPageRef.model_validate(dict(p)))
    return DocsIndexOut(
        software=software,
        latest=releases[0]["version"] if releases else None,
        versions=[
            DocVersionOut(
                version=r["version"],
                released_at=r["released_at"],
                pages=by_version.get(r["version"], []),
            )
            for r in releases
        ],
    )


async def doc_page(conn: asyncpg.Connection, software: str, version: str, slug: str) -> DocPageOut:
    """A page of a version, or of the latest one when `version` is `latest`."""
    await require_software(conn, software)
    latest = await repo.latest_version(conn, software)
    if latest is None:
        raise NotFound("no_documentation", f"Aucune version documentée de {software}.")
    wanted = latest if version == LATEST else version
    row = await repo.doc_page(conn, software, wanted, slug)
    if row is None:
        raise NotFound("page_not_found", f"Page {slug!r} introuvable en version {wanted}.")
    return DocPageOut(
        software=software,
        version=wanted,
        latest=wanted == latest,
        latest_version=latest,
        slug=slug,
        **dict(row),
    )


# --- R12: the evolutions presented each week ----------------------------------------------------


async def announcements(
    conn: asyncpg.Connection,
    software: str | None,
    week: str | None,
    weeks: int,
    now: datetime,
    zone: str,
) -> list[WeeklyAnnouncement]:
    """Per software and ISO week (Europe/Paris), the releases and the functional evolutions
    they shipped; newest week first. `week` picks one week; else the last `weeks` weeks."""
    if software is not None:
        await require_software(conn, software)
    if week is not None:
        start = domain.week_start(week)
        since, until = start, start + timedelta(days=7)
    else:
        this_week = domain.week_start(domain.iso_week(now, zone))
        since, until = this_week - timedelta(weeks=weeks - 1), this_week + timedelta(days=7)
    releases = await repo.releases_between(conn, software, since, until, zone)
    shipped = await repo.shipped_between(conn, software, since, until, zone)
    names = {s["code"]: str(s["name"]) for s in await directory.list_softwares(conn)}
    weekly: dict[tuple[str, str], dict[str, Any]] = {}
    for r in releases:
        entry = _week_entry(weekly, r["software"], domain.iso_week(r["released_at"], zone))
        entry["releases"].append(AnnouncedRelease.model_validate(dict(r)))
        entry["updated"] = max(entry["updated"] or r["released_at"], r["released_at"])
    for e in shipped:
        entry = _week_entry(weekly, e["software"], domain.iso_week(e["shipped_at"], zone))
        entry["evolutions"].append(AnnouncedEvolution.model_validate(dict(e)))
    items = [
        WeeklyAnnouncement(
            software=code,
            software_name=names.get(code, code),
            week=label,
            week_start=domain.week_start(label),
            **entry,
        )
        for (code, label), entry in weekly.items()
    ]
    return sorted(items, key=lambda a: (a.week, a.updated, a.software), reverse=True)


def _week_entry(
    weekly: dict[tuple[str, str], dict[str, Any]], software: str, week: str
) -> dict[str, Any]:
    return weekly.setdefault((software, week), {"updated": None, "evolutions": [], "releases": []})


async def software_name(conn: asyncpg.Connection, software: str) -> str:
    await require_software(conn, software)
    for s in await directory.list_softwares(conn):
        if s["code"] == software:
            return str(s["name"])
    return software
