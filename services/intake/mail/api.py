"""Mail intake HTTP API for technicians: the ledger, the quarantine, stored mails, attachments
(also to a customer of the dossier's organisation, or to the bearer of a grant for one file).

Attachments are always downloads (`Content-Disposition: attachment`), typed by what their
bytes are, `application/octet-stream` when a browser could run them, with
`X-Content-Type-Options: nosniff` and a sandboxing Content-Security-Policy.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError

from assistance import directory, grants, outbox
from assistance.boundary import Moment, Offset
from assistance.directory import Principal, Role
from assistance.errors import Conflict, DomainError, Forbidden, Gone, NotFound
from assistance.text import Line
from assistance.web import (
    CustomerTechnicianOrAdmin,
    PoolDep,
    TechnicianOrAdmin,
    download_headers,
    refusals,
)
from services.intake.mail import dossiers
from services.intake.mail import repo as mail_repo
from services.intake.mail.models import (
    AttachmentRef,
    BounceOut,
    DiscardIn,
    Ingested,
    LedgerOut,
    MailOut,
    Quarantined,
    QuarantineInfo,
    QuarantineItem,
    Rejected,
    ReleaseIn,
    ReleaseOut,
)
from services.intake.mail.rules import (
    choose_software,
    description_of_text,
    strip_quoted,
    subject_of,
)
from services.intake.models import DepositIn, Requester

router = APIRouter(prefix="/mail", tags=["mail"])

ERRORS = refusals({404: "Inconnu"})


def _text(value: str | None, field: str) -> None:
    if value is not None and "\x00" in value:
        raise DomainError("invalid", f"{field} : caractère NUL interdit.", field)


# --- the ledger ---------------------------------------------------------------------------------


@router.get("/ledger", response_model=LedgerOut, responses=ERRORS, summary="Bilan des mails reçus")
async def ledger(
    pool: PoolDep,
    who: TechnicianOrAdmin,
    since: Moment | None = None,
    until: Moment | None = None,
) -> LedgerOut:
    """Reconciliation over a period (all time by default): every delivery answered is counted
    once — received = ingested (opened + joined) + quarantined + duplicates — and refusals at
    reception with their reason."""
    async with pool.acquire() as conn:
        counts = await mail_repo.ledger_counts(conn, since, until)
        backlog = await outbox.backlog(conn, "intake")
    entries, rejected, by_source = counts.entries, counts.rejected, counts.by_source
    quarantine, stored = counts.quarantine, counts.stored
    opened, joined = entries.get("opened", 0), entries.get("joined", 0)
    quarantined, duplicates = entries.get("quarantined", 0), entries.get("duplicate", 0)
    received = opened + joined + quarantined + duplicates
    statuses = {"pending": 0, "released": 0, "discarded": 0}
    reasons: dict[str, int] = {}
    for row in quarantine:
        statuses[row["status"]] += row["n"]
        reasons[row["reason"]] = reasons.get(row["reason"], 0) + row["n"]
    return LedgerOut(
        since=since,
        until=until,
        received=received,
        ingested=Ingested(total=opened + joined, opened=opened, joined=joined),
        quarantined=Quarantined(total=quarantined, by_reason=reasons, **statuses),
        duplicates=duplicates,
        rejected=Rejected(total=entries.get("rejected", 0), by_reason=rejected),
        by_source=by_source,
        stored_messages=stored,
        outbox_backlog=backlog,
        balanced=received == sum(by_source.values())
        and stored == opened + joined + quarantined
        and sum(statuses.values()) == quarantined,
    )


# --- stored mails and the quarantine --------------------------------------------------------------


def _quarantine(row: asyncpg.Record) -> QuarantineInfo | None:
    if row["q_reason"] is None:
        return None
    return QuarantineInfo(
        reason=row["q_reason"],
        detail=row["q_detail"],
        reference=row["q_reference"],
        status=row["q_status"],
        created_at=row["q_created_at"],
        resolved_at=row["q_resolved_at"],
        resolution=row["q_resolution"],
    )


async def _attachments(conn: asyncpg.Connection, mail_id: uuid.UUID) -> list[AttachmentRef]:
    rows = await mail_repo.attachments_of(conn, mail_id)
    return [
        AttachmentRef(
            id=r["id"],
            filename=r["filename"],
            content_type=r["sniffed_type"],
            declared_type=r["declared_type"],
            size=r["size_bytes"],
            kept=r["kept"],
            dropped=r["dropped"],
            dangerous=r["dangerous"],
            inline=r["inline"],
            url=f"/api/v1/mail/attachments/{r['id']}",
        )
        for r in rows
    ]


async def _mail(conn: asyncpg.Connection, mail_id: uuid.UUID) -> MailOut:
    row = await mail_repo.stored_mail(conn, mail_id)
    if row is None:
        raise NotFound("mail_not_found", "Mail inconnu.")
    return MailOut(
        id=row["id"],
        message_id=row["message_id"],
        source=row["source"],
        received_at=row["received_at"],
        sent_at=row["sent_at"],
        envelope_from=row["envelope_from"],
        envelope_to=list(row["envelope_to"]),
        from_address=row["from_address"],
        from_name=row["from_name"],
        subject=row["subject"],
        size=row["size_bytes"],
        outcome=row["outcome"],
        dossier_id=row["dossier_id"],
        reference=row["reference"],
        threaded_by=row["threaded_by"],
        duplicates=row["duplicates"],
        text=row["text_body"],
        html=row["html_body"],
        headers=[tuple(h) for h in row["details"].get("headers", [])],
        details={k: v for k, v in row["details"].items() if k != "headers"},
        attachments=await _attachments(conn, mail_id),
        quarantine=_quarantine(row),
    )


@router.get(
    "/quarantine",
    response_model=list[QuarantineItem],
    responses=ERRORS,
    summary="Mails en quarantaine",
)
async def quarantine_list(
    pool: PoolDep,
    who: TechnicianOrAdmin,
    status: Literal["pending", "released", "discarded", "all"] = "pending",
    reason: Annotated[Line | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[QuarantineItem]:
    """What could not become a dossier, newest first, each with its reason."""
    _text(reason, "reason")
    rows = await mail_repo.quarantined(pool, status, reason, limit, offset)
    return [
        QuarantineItem(
            mail_id=r["id"],
            received_at=r["received_at"],
            source=r["source"],
            from_address=r["from_address"],
            from_name=r["from_name"],
            subject=r["subject"],
            size=r["size_bytes"],
            attachments=r["attachments"],
            quarantine=_quarantine(r),  # type: ignore[arg-type]
        )
        for r in rows
    ]


@router.get(
    "/quarantine/{mail_id}",
    response_model=MailOut,
    responses=ERRORS,
    summary="Un mail en quarantaine",
)
async def quarantine_detail(mail_id: uuid.UUID, pool: PoolDep, who: TechnicianOrAdmin) -> MailOut:
    async with pool.acquire() as conn:
        mail = await _mail(conn, mail_id)
    if mail.quarantine is None:
        raise NotFound("not_quarantined", "Ce mail n'est pas en quarantaine.")
    return mail


@router.get("/messages/{mail_id}", response_model=MailOut, responses=ERRORS, summary="Un mail reçu")
async def mail_detail(mail_id: uuid.UUID, pool: PoolDep, who: TechnicianOrAdmin) -> MailOut:
    """Any stored mail: text, sanitised HTML (no remote images), attachments, outcome."""
    async with pool.acquire() as conn:
        return await _mail(conn, mail_id)


@router.get(
    "/messages/{mail_id}/raw",
    responses={**ERRORS, 200: {"content": {"message/rfc822": {}}}},
    summary="Le mail brut, tel que reçu",
)
async def mail_raw(mail_id: uuid.UUID, pool: PoolDep, who: TechnicianOrAdmin) -> Response:
    raw = await mail_repo.raw_of(pool, mail_id)
    if raw is None:
        raise NotFound("mail_not_found", "Mail inconnu.")
    return Response(raw, media_type="message/rfc822", headers=download_headers(f"{mail_id}.eml"))


# How a resolved quarantine is worded in a refusal (a person reads it, never the code).
RESOLVED_AS = {"released": "libéré", "discarded": "écarté"}


async def _pending(conn: asyncpg.Connection, mail_id: uuid.UUID) -> asyncpg.Record:
    row = await mail_repo.lock_quarantined(conn, mail_id)
    if row is None:
        raise NotFound("not_quarantined", "Ce mail n'est pas en quarantaine.")
    if row["status"] != "pending":
        done = RESOLVED_AS.get(row["status"], "traité")
        raise Conflict("already_resolved", f"Ce mail est déjà traité ({done}).")
    return row


async def _resolve(
    conn: asyncpg.Connection,
    mail_id: uuid.UUID,
    who: Principal,
    status: str,
    resolution: dict[str, Any],
) -> None:
    await mail_repo.resolve_quarantine(conn, mail_id, status, who.user_id, resolution)


@router.post(
    "/quarantine/{mail_id}/release",
    response_model=ReleaseOut,
    responses={**ERRORS, 409: {"description": "Déjà traité"}, 422: {"description": "Invalide"}},
    summary="Libérer un mail dans un dossier",
)
async def release(
    mail_id: uuid.UUID, body: ReleaseIn, request: Request, pool: PoolDep, who: TechnicianOrAdmin
) -> ReleaseOut:
    """`open`: a new dossier, channel mail, requester From unless given (the dossier's
    acknowledgement will go to them). `attach`: the mail joins an existing dossier as a
    customer message (reopening it if closed)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _pending(conn, mail_id)
        if body.action == "attach":
            return await _attach(conn, row, body, who)
        return await _open(conn, row, body, who, request)


async def _attach(
    conn: asyncpg.Connection, row: asyncpg.Record, body: ReleaseIn, who: Principal
) -> ReleaseOut:
    if body.dossier_id is not None:
        target = await mail_repo.request_by_id(conn, body.dossier_id)
    elif body.reference:
        target = await mail_repo.request_by_reference(conn, body.reference.strip())
    else:
        raise DomainError("dossier_required", "Indiquez le dossier (reference).", "reference")
    if target is None:
        raise NotFound("dossier_not_found", "Dossier inconnu.")
    await dossiers.join_dossier(
        conn,
        row["id"],
        target["id"],
        text=strip_quoted(row["text_body"])[:20_000],
        author_email=row["from_address"] or row["envelope_from"] or "",
        author_name=row["from_name"],
        message_id=row["message_id"],
        received_at=row["received_at"],
        reference=target["reference"],
    )
    await mail_repo.link_dossier(
        conn, row["id"], target["id"], target["reference"], threaded_by="technician"
    )
    await _resolve(
        conn,
        row["id"],
        who,
        "released",
        {"action": "attached", "dossier_id": str(target["id"]), "reference": target["reference"]},
    )
    return ReleaseOut(
        mail_id=row["id"],
        status="released",
        action="attached",
        dossier_id=target["id"],
        reference=target["reference"],
    )


async def _open(
    conn: asyncpg.Connection,
    row: asyncpg.Record,
    body: ReleaseIn,
    who: Principal,
    request: Request,
) -> ReleaseOut:
    settings = request.app.state.settings
    softwares = {str(s["code"]): str(s["name"]) for s in await directory.list_softwares(conn)}
    if body.software is not None:
        if body.software not in softwares:
            raise DomainError(
                "unknown_software", f"Logiciel inconnu : {body.software!r}.", "software"
            )
        software, subject = body.software, row["subject"]
    else:
        found, subject, _ = choose_software(
            row["subject"], row["envelope_to"], softwares, settings.mail_default_software
        )
        if found is None:
            raise DomainError("software_required", "Indiquez le logiciel.", "software")
        software = found
    attachments = await mail_repo.attachment_refs(conn, row["id"])
    try:
        requester = body.requester
        if requester is None:
            email = row["from_address"] or ""
            requester = Requester(email=email, name=row["from_name"] or email.partition("@")[0])
        deposit = DepositIn(
            requester=requester,
            software=software,
            subject=body.subject or subject_of(subject),
            description=description_of_text(
                row["text_body"],
                [(a["filename"], a["size"], a["dropped"], a["embedded"]) for a in attachments],
            ),
        )
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        why = errors[0]["msg"] if errors else ""
        raise DomainError(
            "invalid_request",
            f"Ce mail ne peut pas devenir une demande : {why} "
            "(indiquez requester, subject ou software).",
            where or None,
        ) from exc
    organisation = await directory.organisation_for_email(conn, str(requester.email))
    answer = await dossiers.open_dossier(
        conn,
        row["id"],
        deposit,
        message_id=row["message_id"],
        received_at=row["received_at"],
        settings=settings,
        calendar=request.app.state.calendar,
        organisation_id=organisation,
        deposited_by=who.user_id,
    )
    await _resolve(
        conn,
        row["id"],
        who,
        "released",
        {"action": "opened", "dossier_id": str(answer.id), "reference": answer.reference},
    )
    return ReleaseOut(
        mail_id=row["id"],
        status="released",
        action="opened",
        dossier_id=answer.id,
        reference=answer.reference,
    )


@router.post(
    "/quarantine/{mail_id}/discard",
    response_model=ReleaseOut,
    responses={**ERRORS, 409: {"description": "Déjà traité"}},
    summary="Écarter un mail en quarantaine",
)
async def discard(
    mail_id: uuid.UUID, body: DiscardIn, pool: PoolDep, who: TechnicianOrAdmin
) -> ReleaseOut:
    """Spam, automatic notices: kept (raw) and counted, no dossier."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _pending(conn, mail_id)
        resolution = {"action": "discarded", "reason": body.reason}
        await _resolve(conn, row["id"], who, "discarded", resolution)
    return ReleaseOut(mail_id=mail_id, status="discarded", action="discarded")


@router.get(
    "/bounces", response_model=list[BounceOut], responses=ERRORS, summary="Adresses en échec"
)
async def bounces(pool: PoolDep, who: TechnicianOrAdmin, bouncing: bool = True) -> list[BounceOut]:
    """Addresses our mails bounced from (delivery status notifications), latest first."""
    rows = await mail_repo.bounces(pool, bouncing)
    return [
        BounceOut(
            address=r["address"],
            bouncing=r["bouncing"],
            first_at=r["first_at"],
            last_at=r["last_at"],
            count=r["count"],
            status=r["status"],
            diagnostic=r["diagnostic"],
            reference=r["reference"],
        )
        for r in rows
    ]


@router.delete(
    "/bounces/{address}", status_code=204, responses=ERRORS, summary="L'adresse est corrigée"
)
async def clear_bounce(address: str, pool: PoolDep, who: TechnicianOrAdmin) -> Response:
    """The address works again: the next bounce alerts again."""
    _text(address, "address")
    if not await mail_repo.clear_bounce(pool, address):
        raise NotFound("bounce_not_found", "Adresse inconnue.")
    return Response(status_code=204)


# --- attachments --------------------------------------------------------------------------------


# A stored file: always a download, typed by what its bytes are (`download_headers`).
DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Le fichier, toujours en téléchargement (`Content-Disposition: "
        "attachment`), typé par son contenu (`application/octet-stream` s'il pourrait "
        "s'exécuter)",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    },
    410: {"description": "Pièce jointe non conservée (trop volumineuse)"},
}


@router.get(
    "/attachments/{attachment_id}",
    response_class=Response,
    responses={**ERRORS, **DOWNLOAD},
    summary="Télécharger une pièce jointe",
)
async def attachment(
    attachment_id: uuid.UUID, pool: PoolDep, who: CustomerTechnicianOrAdmin
) -> Response:
    """Technicians and admins, or a customer of the organisation of the dossier the mail belongs
    to (issue 13: other staff roles read no customer mail)."""
    row = await mail_repo.attachment(pool, attachment_id)
    if row is None:
        raise NotFound("attachment_not_found", "Pièce jointe inconnue.")
    if who.role not in (Role.technician, Role.admin) and (
        who.role is not Role.customer
        or row["organisation_id"] is None
        or row["organisation_id"] != who.organisation_id
    ):
        raise Forbidden("forbidden", "Cette pièce jointe ne concerne pas votre organisation.")
    return _download(row)


@router.get(
    "/attachments/{attachment_id}/granted",
    response_class=Response,
    responses={
        **DOWNLOAD,
        404: {"description": "Accès invalide, expiré, ou donné pour une autre pièce jointe"},
    },
    summary="Télécharger une pièce jointe avec un accès délivré pour elle",
)
async def granted_attachment(
    attachment_id: uuid.UUID,
    request: Request,
    pool: PoolDep,
    acces: Annotated[
        str,
        Query(
            max_length=grants.MAX_CHARS,
            description="L'accès signé, valable quelques minutes, donné pour cette seule pièce "
            "jointe par le service qui en décide (le suivi d'un dossier par son lien)",
        ),
    ],
) -> Response:
    """No account: the bearer of a grant for this file (decision 0019, addendum). The service
    that holds the authority (the dossier service, for a file of a mail a follow link shows)
    checked it and sent here with the grant; this serves the bytes of that one file until the
    grant expires (a few minutes). A forged or expired grant, or one for another file, finds
    nothing (404)."""
    key = request.app.state.settings.mail_signing_key
    if not grants.allows(acces, grants.mail_attachment(attachment_id), key):
        raise NotFound("attachment_not_found", "Pièce jointe inconnue.")
    row = await mail_repo.attachment(pool, attachment_id)
    if row is None:
        raise NotFound("attachment_not_found", "Pièce jointe inconnue.")
    return _download(row)


def _download(row: asyncpg.Record) -> Response:
    """The file, always a download, typed by what its bytes are (`application/octet-stream`
    when a browser could run it)."""
    if row["content"] is None:
        raise Gone("attachment_not_kept", "Pièce jointe non conservée (trop volumineuse).")
    media_type = "application/octet-stream" if row["dangerous"] else row["sniffed_type"]
    return Response(
        bytes(row["content"]),
        media_type=media_type,
        headers=download_headers(row["filename"]),
    )
