"""Releases (R11, R12): a software's product manager (or their CI) declares a version.

In one transaction: the version joins the directory's catalogue, its documentation is published
(pages not rewritten are carried over from the previous version, so every version is complete),
the accepted evolutions it carries are marked shipped and each requester is mailed once per
request and version, and `evolutions.version.released` goes to the outbox (the bugs service
listens to it).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from assistance import directory
from assistance.directory import Principal, Role
from assistance.errors import Conflict, DomainError, Forbidden, NotFound
from assistance.settings import Settings
from assistance.web import body_hash
from services.evolutions import backlog, domain, mail, repo
from services.evolutions.models import ReleaseIn, ReleaseOut
from services.evolutions.rendering import to_html


async def require_software(conn: asyncpg.Connection | asyncpg.Pool, software: str) -> None:
    if software not in await directory.software_codes(conn):
        raise NotFound("software_not_found", f"Logiciel inconnu : {software!r}.", "software")


async def declare(
    conn: asyncpg.Connection,
    software: str,
    who: Principal,
    body: ReleaseIn,
    settings: Settings,
) -> tuple[ReleaseOut, bool]:
    """Record the release once; returns (answer, created). Call inside a transaction."""
    await require_software(conn, software)
    if who.role is not Role.product_manager or not await repo.is_product_manager(
        conn, software, who.user_id
    ):
        raise Forbidden(
            "not_product_manager",
            f"Seul un chef de produit de {software} peut déclarer une version.",
        )
    version = domain.check_version(body.version)
    digest = body_hash(body.model_dump(mode="json"))
    await repo.lock_release(conn, software, version)
    stored = await repo.release(conn, software, version)
    if stored is not None:
        if stored["body_hash"] != digest:
            name = await backlog.software_label(conn, software)
            raise Conflict(
                "version_already_released",
                f"La version {version} de {name} est déjà déclarée, autrement.",
                "version",
            )
        return await _answer(conn, dict(stored)), False
    shipped = await _shippable(conn, software, version, body.evolutions)
    released_at = datetime.now(UTC)
    await repo.insert_release(
        conn,
        software,
        version,
        notes=body.notes,
        released_at=released_at,
        released_by=who.user_id,
        body_hash=digest,
        evolution_ids=[e["id"] for e in shipped],
    )
    await directory.add_software_version(conn, software, version)
    slugs = await _publish_docs(conn, software, version, body)
    notified = 0
    for evolution in shipped:
        notified += await _ship(conn, evolution, version, released_at, body.notes, settings)
    await repo.set_notified_requests(conn, software, version, notified)
    await backlog.publish(
        conn,
        f"{software}:{version}:released",
        "version.released",
        {
            "software": software,
            "version": version,
            "released_at": released_at,
            "notes": body.notes,
            "evolution_ids": [e["id"] for e in shipped],
            "documentation": slugs,
        },
    )
    stored = await repo.release(conn, software, version)
    assert stored is not None  # inserted above, in this transaction
    return await _answer(conn, dict(stored)), True


async def _shippable(
    conn: asyncpg.Connection, software: str, version: str, ids: list[uuid.UUID]
) -> list[dict[str, Any]]:
    """The accepted evolutions of this software that the version carries."""
    found: dict[uuid.UUID, dict[str, Any]] = {}
    for some_id in ids:
        try:
            evolution_id = await backlog.find_id(conn, some_id)
        except NotFound as missing:
            raise DomainError(
                "unknown_evolution", f"Évolution inconnue : {some_id}.", "evolutions"
            ) from missing
        row = await backlog.lock_evolution(conn, evolution_id)
        if row["software"] != software:
            raise DomainError(
                "other_software", f"L'évolution {some_id} concerne un autre logiciel.", "evolutions"
            )
        if row["status"] != "accepted":
            raise DomainError(
                "not_accepted",
                f"L'évolution {some_id} n'a pas été acceptée : elle ne peut pas être livrée.",
                "evolutions",
            )
        if row["shipped_version"] not in (None, version):
            raise DomainError(
                "already_shipped",
                f"L'évolution {some_id} est déjà livrée en version {row['shipped_version']}.",
                "evolutions",
            )
        found[evolution_id] = row
    return list(found.values())


async def _publish_docs(
    conn: asyncpg.Connection, software: str, version: str, body: ReleaseIn
) -> list[str]:
    """R11: this version's pages; the previous version's other pages are carried over."""
    written = {page.slug for page in body.documentation}
    for page in body.documentation:
        await repo.insert_doc_page(
            conn, software, version, page.slug, page.title, page.markdown, to_html(page.markdown)
        )
    previous = await repo.previous_version(conn, software, version)
    if previous is not None:
        await repo.carry_doc_pages(conn, software, previous, version, sorted(written))
    return await repo.doc_slugs(conn, software, version)


async def _ship(
    conn: asyncpg.Connection,
    evolution: dict[str, Any],
    version: str,
    released_at: datetime,
    notes: str,
    settings: Settings,
) -> int:
    """R9: the requesters are told again when the evolution ships (once per request and
    version), and it joins the week's announcements (R12). Returns how many were told."""
    evolution_id = evolution["id"]
    await repo.mark_shipped(conn, evolution_id, version, released_at)
    requests = (await repo.requests_of(conn, [evolution_id]))[evolution_id]
    software_name = await backlog.software_label(conn, evolution["software"])
    told = 0
    for request in requests:
        if not await repo.record_shipment(conn, request["id"], version):
            continue
        told += 1
        await mail.enqueue(
            conn,
            mail.compose(
                "shipped",
                f"{request['id']}.{version}",
                request["requester_email"],
                mail.requester_subject(
                    request["reference"],
                    f"Votre évolution est disponible : {software_name} {version}",
                ),
                "shipped",
                {
                    "requester_name": request["requester_name"],
                    "reference": request["reference"],
                    "software": evolution["software"],
                    "software_name": software_name,
                    "version": version,
                    "title": evolution["title"],
                    "summary": evolution["summary"],
                    "notes": notes,
                },
                settings,
            ),
        )
    # The requesters' dossiers are closed by now: they are listed under `dossiers`, not
    # `dossier_ids`, so the signal bridge does not wake their workflows.
    await backlog.publish(
        conn,
        f"{evolution_id}:shipped:{version}",
        "request.shipped",
        {
            "evolution_id": evolution_id,
            "software": evolution["software"],
            "version": version,
            "title": evolution["title"],
            "shipped_at": released_at,
            "request_ids": [r["id"] for r in requests],
            "dossiers": list(dict.fromkeys(r["dossier_id"] for r in requests)),
        },
    )
    return told


async def _answer(conn: asyncpg.Connection, row: dict[str, Any]) -> ReleaseOut:
    slugs = await repo.doc_slugs(conn, row["software"], row["version"])
    return ReleaseOut(
        software=row["software"],
        version=row["version"],
        notes=row["notes"],
        released_at=row["released_at"],
        evolutions=list(row["evolution_ids"]),
        documentation=slugs,
        notified_requests=row["notified_requests"],
    )


async def list_releases(conn: asyncpg.Connection, software: str) -> list[ReleaseOut]:
    await require_software(conn, software)
    return [await _answer(conn, dict(r)) for r in await repo.releases_full(conn, software)]
