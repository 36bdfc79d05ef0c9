"""Dossier HTTP API: reading and searching (R10), the queue (R4), the lifecycle commands
(R2–R10, answered with the dossier as it now is), and first-response reports (R3)."""

from __future__ import annotations

import secrets
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import AfterValidator

from assistance import audit, idempotency, rate_limits
from assistance.boundary import Moment, Offset
from assistance.clock import local
from assistance.commitment import Commitment
from assistance.directory import Principal, Role
from assistance.errors import Conflict, DomainError, NotFound, TooManyRequests
from assistance.rate_limits import Rule
from assistance.text import Line, SearchQuery
from assistance.web import (
    Anyone,
    AnyStaff,
    Customer,
    CustomerTechnicianOrAdmin,
    PoolDep,
    TechnicianOrAdmin,
    client_of,
    from_site,
    refusals,
)
from services.dossier import commands, domain, follow, repo
from services.dossier.models import (
    ActivityReport,
    Breach,
    BreachReport,
    CloseIn,
    CommandPending,
    Compliance,
    DiagnosisIn,
    DossierOut,
    DossierPage,
    DossierStatus,
    FollowLinksIn,
    FollowLinksOut,
    FollowRevokedOut,
    Kind,
    QueueItem,
    QueueOut,
    ReopenIn,
    TextIn,
    Volume,
    WorkaroundIn,
)
from services.dossier.state import (
    ActorCmd,
    CloseCmd,
    DiagnosisCmd,
    MessageCmd,
    ReopenCmd,
    ScreenShareCmd,
    WorkaroundCmd,
)

router = APIRouter(prefix="/api/v1", tags=["dossiers"])
FOLLOW_LINKS_PER_CLIENT = 20  # asks an hour from one client address (issue 13)
HOUR = timedelta(hours=1)
FOLLOW_LINKS_SENT = (
    "Si cette adresse a des dossiers, un lien de suivi pour chacun vient de lui être envoyé."
)

REFUSALS = refusals(
    {
        404: "Dossier introuvable",
        409: "Transition refusée : `error.message` dit pourquoi",
        422: "Corps invalide",
        503: "Suivi momentanément indisponible, réessayer",
    }
)
PENDING = (
    "Le suivi n'a pas répondu à temps : la commande sera appliquée (ou refusée) dès qu'il "
    "répond. `Location` dit où lire son issue ; la même `Idempotency-Key` la relit aussi."
)
REFUSALS[202] = {"model": CommandPending, "description": PENDING}


@router.get("/dossiers/{dossier_id}", response_model=DossierOut, summary="Lire un dossier")
async def read_dossier(
    request: Request, dossier_id: uuid.UUID, pool: PoolDep, who: Anyone
) -> DossierOut:
    """Staff see every dossier and its internal notes; a customer sees their organisation's
    dossiers and the entries meant for them. Every staff read is audited (issue 13)."""
    found = await repo.get_dossier(pool, dossier_id, who)
    if found is None:  # accepted while NATS was down: not projected yet, but not lost (R13)
        found = await repo.just_deposited(pool, dossier_id, who)
    if found is None:
        raise NotFound("dossier_not_found", "Dossier introuvable.")
    if who.is_staff:
        await audit.record(
            pool,
            who,
            "dossier.read",
            str(dossier_id),
            client_of(request),
            reference=found.reference,
        )
    return found


@router.get(
    "/follow/{token}",
    response_model=DossierOut,
    responses={404: {"description": "Lien de suivi invalide, expiré ou révoqué"}},
    summary="Suivre un dossier par son lien personnel, sans compte",
)
async def read_followed(
    token: Annotated[str, Path(max_length=100)], request: Request, pool: PoolDep
) -> DossierOut:
    """Issue 14: the requester's personal link (sent in the acknowledgement) shows the dossier
    as its customer sees it, until the end of its reopen window or a revocation."""
    found = await follow.followed_dossier(pool, token, request.app.state.settings)
    if found is None:
        raise NotFound("follow_link_invalid", "Ce lien de suivi n'est pas valable ou a expiré.")
    dossier_id, organisation_id = found
    reader = Principal(user_id=None, role=Role.customer, organisation_id=organisation_id)
    dossier = await repo.get_dossier(pool, dossier_id, reader)
    if dossier is None:
        dossier = await repo.just_deposited(pool, dossier_id, reader)
    if dossier is None:
        raise NotFound("follow_link_invalid", "Ce lien de suivi n'est pas valable ou a expiré.")
    return dossier


@router.get(
    "/follow/{token}/attachments/{attachment_id}",
    status_code=303,
    response_class=RedirectResponse,
    responses={
        303: {
            "description": "Le fichier se télécharge auprès de la réception des mails "
            "(`Location`), avec un accès valable quelques minutes pour ce seul fichier",
            "headers": {
                "Location": {
                    "description": "`/api/v1/mail/attachments/{attachment_id}/granted"
                    "?acces=<accès>`",
                    "schema": {"type": "string"},
                }
            },
        },
        404: {"description": "Lien de suivi invalide, ou pièce jointe d'un autre dossier"},
    },
    summary="Télécharger une pièce jointe d'un dossier suivi par son lien personnel",
)
async def followed_attachment(
    token: Annotated[str, Path(max_length=100)],
    attachment_id: uuid.UUID,
    request: Request,
    pool: PoolDep,
) -> RedirectResponse:
    """Issue 14: a file that came with a message the requester sees on the followed page,
    with the same authority as the page (the dossier's signed link). The dossier service decides
    (the link, and one of the dossier's entries a customer reads listing the file); mail intake
    holds the file: the answer sends there with a grant for this file alone, valid a few
    minutes (decision 0019, addendum), where it is always a download."""
    settings = request.app.state.settings
    found = await follow.followed_dossier(pool, token, settings)
    if found is None:
        raise NotFound("follow_link_invalid", "Ce lien de suivi n'est pas valable ou a expiré.")
    if not await follow.shows_attachment(pool, found[0], attachment_id):
        raise NotFound("attachment_not_found", "Pièce jointe inconnue.")
    return RedirectResponse(
        follow.granted_mail_file(settings, attachment_id),
        status_code=303,
        headers={"Cache-Control": "private, no-store"},
    )


@router.post(
    "/follow-links",
    status_code=202,
    response_model=FollowLinksOut,
    responses={
        429: {
            "description": "Trop de demandes depuis cette adresse : réessayer après "
            "`Retry-After` secondes"
        }
    },
    summary="Recevoir par mail les liens de suivi de ses dossiers",
)
async def ask_follow_links(body: FollowLinksIn, request: Request, pool: PoolDep) -> FollowLinksOut:
    """Issue 14: the same answer whatever the address, so it reveals nothing; an address that
    has dossiers receives a link to each (at most a few mails an hour). Issue 13: at most
    `FOLLOW_LINKS_PER_CLIENT` asks an hour from one client address (429 with `Retry-After`);
    the site's own calls are limited by the site, per visitor."""
    client = client_of(request)
    if not from_site(request):
        try:
            await rate_limits.take(
                pool, [Rule(f"follow:client:{client}", FOLLOW_LINKS_PER_CLIENT)], HOUR
            )
        except rate_limits.Limited as limited:
            raise TooManyRequests(
                "too_many_requests",
                f"Trop de demandes de liens de suivi depuis cette adresse : réessayez dans "
                f"{limited.minutes} minute{'s' if limited.minutes > 1 else ''}.",
                retry_after=limited.retry_after,
            ) from None
    await follow.mail_links(pool, request.app.state.settings, str(body.email))
    return FollowLinksOut(message=FOLLOW_LINKS_SENT)


@router.post(
    "/dossiers/{dossier_id}/follow-links/revoke",
    response_model=FollowRevokedOut,
    responses=REFUSALS,
    summary="Révoquer les liens de suivi d'un dossier",
)
async def revoke_follow_links(
    dossier_id: uuid.UUID, pool: PoolDep, who: TechnicianOrAdmin
) -> FollowRevokedOut:
    """Every link of the dossier sent so far stops working; later mails carry new ones."""
    found = await repo.get_dossier(pool, dossier_id, who)
    if found is None and await repo.just_deposited(pool, dossier_id, who) is None:
        raise NotFound("dossier_not_found", "Dossier introuvable.")
    return FollowRevokedOut(revoked_at=local(await follow.revoke(pool, dossier_id, who.user_id)))


def _technician(value: str) -> str:
    if value in ("me", "none"):
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(
            "valeur inconnue ; valeurs acceptées : « me » (mes dossiers), « none » (dossiers "
            "sans technicien) ou l'identifiant d'un technicien"
        ) from None


TechnicianFilter = Annotated[
    str | None,
    Query(
        max_length=36,
        description=(
            "Technicien qui suit le dossier : `me` (moi), `none` (personne : dossiers non "
            "attribués) ou l'identifiant d'un utilisateur"
        ),
        examples=["me"],
    ),
    AfterValidator(lambda v: None if v is None else _technician(v)),
]
SoftwareFilter = Annotated[
    Line | None,
    Query(max_length=100, description="Code du logiciel (par ex. `manao-compta`)"),
]
KindFilter = Annotated[
    Kind | None, Query(description="Classement du diagnostic (R5) : usage, advanced_usage…")
]
StatusFilter = Annotated[DossierStatus | None, Query(description="État du dossier")]


async def _filters(
    pool: Any,
    *,
    status: str | None = None,
    open: bool | None = None,
    technician: str | None = None,
    software: str | None = None,
    kind: str | None = None,
    organisation: uuid.UUID | None = None,
) -> repo.Filters:
    """The filters, once the software they name is known (an unknown one: a 422)."""
    if software is not None and not await repo.software_exists(pool, software):
        raise DomainError(
            "unknown_software",
            f"software : logiciel inconnu « {software} ».",
            field="software",
        )
    return repo.Filters(
        status=status,
        open=open,
        technician=technician,
        software=software,
        kind=kind,
        organisation=organisation,
    )


@router.get("/dossiers", response_model=DossierPage, summary="Lister et rechercher les dossiers")
async def search_dossiers(
    pool: PoolDep,
    who: Anyone,
    status: StatusFilter = None,
    q: Annotated[
        SearchQuery | None,
        Query(
            description=(
                "Recherche plein texte, sans tenir compte des accents ni des majuscules, "
                "racines françaises (« etablissement » trouve « établissements ») : référence, "
                "sujet, description, résolution, nom et adresse du demandeur, nom de "
                "l'organisation, et chaque texte de l'historique que l'appelant peut lire "
                "(jamais une note interne pour un client). Les meilleures correspondances "
                "d'abord."
            )
        ),
    ] = None,
    organisation: Annotated[
        uuid.UUID | None, Query(description="Organisation (personnel seulement)")
    ] = None,
    open: Annotated[
        bool | None,
        Query(description="`true` : dossiers en cours (non clos) ; `false` : dossiers clos"),
    ] = None,
    technician: TechnicianFilter = None,
    software: SoftwareFilter = None,
    kind: KindFilter = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> DossierPage:
    """R10: open and archived dossiers alike, French full-text search (decision 0022), with
    optional filters (issue 14); a customer sees their organisation's dossiers only."""
    filters = await _filters(
        pool,
        status=status,
        open=open,
        technician=technician,
        software=software,
        kind=kind,
        organisation=organisation,
    )
    items, total = await repo.list_dossiers(
        pool, who, filters=filters, q=q, limit=limit, offset=offset
    )
    return DossierPage(items=items, total=total)


@router.get("/queue", response_model=QueueOut, summary="La file, dans l'ordre de traitement")
async def queue(
    request: Request,
    pool: PoolDep,
    who: AnyStaff,
    technician: TechnicianFilter = None,
    software: SoftwareFilter = None,
    status: StatusFilter = None,
    kind: KindFilter = None,
    limit: Annotated[
        int, Query(ge=1, le=500, description="Dossiers par page (les premiers de la file)")
    ] = 100,
    offset: Offset = 0,
) -> QueueOut:
    """R4: weekend deposits first on Monday morning, otherwise first come, first served;
    each dossier with its position, the reason, and the business time left (R3). The filters
    (issue 14) keep some dossiers of the queue; each keeps its position in the whole queue.
    A page at a time (`limit`, `offset`), `total` the dossiers the filters keep."""
    filters = await _filters(
        pool, status=status, technician=technician, software=software, kind=kind
    )
    calendar = request.app.state.calendar
    await repo.mark_weekend_deposits(
        pool, lambda received_at: domain.is_weekend_deposit(calendar, received_at)
    )
    rows, total = await repo.queue_page(pool, who, filters, limit=limit, offset=offset)
    now = datetime.now(UTC)
    items = []
    for r in rows:
        entry = domain.QueueEntry(
            dossier_id=str(r["id"]),
            reference=r["reference"],
            received_at=r["received_at"],
            weekend=bool(r["weekend_deposit"]),
        )
        left = None
        if r["first_responded_at"] is None:
            span = Commitment.time_left(calendar, now, r["first_response_due"])
            left = int(span.total_seconds() // 60)
        items.append(
            QueueItem(
                position=r["position"],
                reason=domain.queue_reason(calendar, entry),
                id=r["id"],
                reference=r["reference"],
                status=r["status"],
                kind=r["kind"],
                software=r["software"],
                subject=r["subject"],
                received_at=local(r["received_at"]),
                first_response_due=local(r["first_response_due"]),
                first_responded_at=local(r["first_responded_at"]),
                business_minutes_left=left,
                technician={"id": r["technician_id"], "name": r["technician_name"]}
                if r["technician_id"]
                else None,
            )
        )
    return QueueOut(items=items, total=total)


@router.get(
    "/reports/breaches",
    response_model=BreachReport,
    summary="Dépassements de l'engagement de première réponse",
)
async def breach_report(
    pool: PoolDep,
    who: AnyStaff,
    since: Moment | None = None,
    until: Moment | None = None,
    software: Annotated[Line | None, Query(max_length=100)] = None,
) -> BreachReport:
    """R3: every breach of the first-response commitment (assistance/commitment.py), for
    reports."""
    rows = await repo.breaches(pool, since=since, until=until, software=software)
    items = [
        Breach(
            dossier_id=r["dossier_id"],
            reference=r["reference"],
            software=r["software"],
            due=local(r["due"]),
            breached_at=local(r["breached_at"]),
            first_responded_at=local(r["first_responded_at"]),
            technician_id=r["technician_id"],
        )
        for r in rows
    ]
    return BreachReport(items=items, total=len(items))


@router.get(
    "/reports/activity",
    response_model=ActivityReport,
    summary="Activité : respect de la première réponse par semaine et par logiciel, volumes",
)
async def activity_report(
    request: Request,
    pool: PoolDep,
    who: AnyStaff,
    weeks: Annotated[int, Query(ge=1, le=52, description="Nombre de semaines")] = 8,
) -> ActivityReport:
    """R3 for the dashboard: per week (Monday, Europe/Paris) and per software, how many
    dossiers got their first response in time, late, or not yet; volumes by channel and kind."""
    calendar = request.app.state.calendar
    today = datetime.now(calendar.tz).date()
    first_monday = today - timedelta(days=today.weekday(), weeks=weeks - 1)
    since = datetime.combine(first_monday, datetime.min.time(), tzinfo=calendar.tz)
    rows, breach_rows = await repo.activity(pool, since=since, timezone=calendar.timezone)
    per_week: dict[str, Counter[str]] = {
        (first_monday + timedelta(weeks=i)).isoformat(): Counter() for i in range(weeks)
    }
    per_software: dict[str, Counter[str]] = {}
    channels: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for r in rows:
        counts = Counter(total=r["total"], on_time=r["on_time"], late=r["late"])
        per_week.setdefault(r["week"].isoformat(), Counter()).update(counts)
        per_software.setdefault(r["software"], Counter()).update(counts)
        channels[r["channel"]] += r["total"]
        kinds[r["kind"]] += r["total"]
    for r in breach_rows:
        per_week.setdefault(r["week"].isoformat(), Counter())["breaches"] += r["n"]

    def compliance(key: str, c: Counter[str]) -> Compliance:
        return Compliance(
            key=key,
            total=c["total"],
            on_time=c["on_time"],
            late=c["late"],
            pending=c["total"] - c["on_time"] - c["late"],
            breaches=c["breaches"],
        )

    return ActivityReport(
        since=since,
        weeks=[compliance(k, c) for k, c in sorted(per_week.items())],
        softwares=[compliance(k, c) for k, c in sorted(per_software.items())],
        channels=[Volume(key=k, total=n) for k, n in sorted(channels.items())],
        kinds=[Volume(key=k, total=n) for k, n in sorted(kinds.items())],
    )


# --- lifecycle commands ------------------------------------------------------------------------


async def _send(
    request: Request,
    pool: Any,
    dossier_id: uuid.UUID,
    who: Principal,
    update: str,
    command: type,
    **fields: Any,
) -> Any:
    """Run one lifecycle command as `who` and answer with the dossier as it now is, or 202
    with where to read the outcome (docs/decisions/0012)."""
    cmd = command(actor=commands.actor_of(who), **fields)
    client = request.app.state.runtime.temporal
    answer = await commands.send(
        client, pool, dossier_id, who, update, cmd, idempotency.command_id(request)
    )
    return _pending(answer) if isinstance(answer, CommandPending) else answer


def _pending(answer: CommandPending) -> JSONResponse:
    return JSONResponse(
        answer.model_dump(mode="json"),
        status_code=202,
        headers={"Location": answer.location, "Retry-After": "2"},
    )


@router.get(
    "/dossiers/{dossier_id}/commands/{command_id}",
    response_model=DossierOut,
    responses={
        **REFUSALS,
        202: {"model": CommandPending, "description": PENDING},
        404: {"description": "Dossier introuvable, ou commande inconnue de ce dossier"},
        409: {"description": "Commande refusée : `error.message` dit pourquoi"},
    },
    summary="Lire l'issue d'une commande répondue 202",
)
async def command_outcome(
    request: Request,
    dossier_id: uuid.UUID,
    command_id: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9-]+$")],
    pool: PoolDep,
    who: Anyone,
) -> Any:
    """The dossier once the command is applied, 409 if the workflow refused it, 202 while it
    has not answered yet (Temporal or its worker paused)."""
    client = request.app.state.runtime.temporal
    answer = await commands.outcome(client, pool, dossier_id, who, command_id)
    return _pending(answer) if isinstance(answer, CommandPending) else answer


@router.post(
    "/dossiers/{dossier_id}/take",
    response_model=DossierOut,
    responses=REFUSALS,
    summary="Prendre le dossier en charge",
)
async def take(
    request: Request,
    dossier_id: uuid.UUID,
    pool: PoolDep,
    who: TechnicianOrAdmin,
    takeover: Annotated[
        bool,
        Query(description="Administrateur : reprendre un dossier suivi par un autre technicien"),
    ] = False,
) -> DossierOut:
    """R2: the technician who takes a dossier follows it to closure. An admin takes over a
    dossier another technician follows only with `takeover=true` (issue 13: never silently);
    the timeline records « Repris par … (suivi jusque-là par …) »."""
    if who.role is Role.admin and not takeover:
        current = await repo.get_dossier(pool, dossier_id, who)
        held = current.technician if current is not None else None
        if held and str(held.get("id")) != str(who.user_id):
            raise Conflict(
                "takeover_required",
                f"Le dossier est suivi par {held.get('name') or 'un autre technicien'} : pour le "
                "reprendre, demandez explicitement la reprise (takeover=true).",
            )
    return await _send(request, pool, dossier_id, who, "take", ActorCmd)


@router.post(
    "/dossiers/{dossier_id}/release",
    response_model=DossierOut,
    responses=REFUSALS,
    summary="Rendre le dossier à la file",
)
async def release(
    request: Request, dossier_id: uuid.UUID, pool: PoolDep, who: TechnicianOrAdmin
) -> DossierOut:
    return await _send(request, pool, dossier_id, who, "release", ActorCmd)


@router.post(
    "/dossiers/{dossier_id}/diagnosis",
    response_model=DossierOut,
    responses=REFUSALS,
    summary="Diagnostiquer et classer",
)
async def diagnose(
    request: Request,
    dossier_id: uuid.UUID,
    body: DiagnosisIn,
    pool: PoolDep,
    who: TechnicianOrAdmin,
) -> DossierOut:
    """R5: context, need and class; advanced usage, bug (after the workaround) and evolution
    then go to their services (R7–R9)."""
    return await _send(request, pool, dossier_id, who, "diagnose", DiagnosisCmd, **dict(body))


@router.post(
    "/dossiers/{dossier_id}/responses",
    response_model=DossierOut,
    responses=REFUSALS,
    summary="Répondre (technicien) ou écrire (client)",
)
async def respond(
    request: Request,
    dossier_id: uuid.UUID,
    body: TextIn,
    pool: PoolDep,
    who: CustomerTechnicianOrAdmin,
) -> DossierOut:
    """A technician's response is mailed to the customer and stops the R3 clock; a customer's
    message resumes a dossier waiting for them."""
    return await _send(request, pool, dossier_id, who, "respond", MessageCmd, text=body.text)


@router.post(
    "/dossiers/{dossier_id}/notes",
    response_model=DossierOut,
    responses=REFUSALS,
    summary="Ajouter une note interne",
)
async def note(
    request: Request, dossier_id: uuid.UUID, body: TextIn, pool: PoolDep, who: TechnicianOrAdmin
) -> DossierOut:
    """Technicians and admins (issue 13: other staff roles get a 403)."""
    return await _send(request, pool, dossier_id, who, "note", MessageCmd, text=body.text)


@router.post(
    "/dossiers/{dossier_id}/information-requests",
    response_model=DossierOut,
    responses=REFUSALS,
    summary="Demander une information au client",
)
async def request_information(
    request: Request, dossier_id: uuid.UUID, body: TextIn, pool: PoolDep, who: TechnicianOrAdmin
) -> DossierOut:
    """R2: waiting for the customer pauses the follow-through and reminds them."""
    return await _send(
        request, pool, dossier_id, who, "request_information", MessageCmd, text=body.text
    )


@router.post(
    "/dossiers/{dossier_id}/screen-share",
    response_model=DossierOut,
    responses=REFUSALS,
    summary="Proposer un partage d'écran",
)
async def screen_share(
    request: Request, dossier_id: uuid.UUID, pool: PoolDep, who: TechnicianOrAdmin
) -> DossierOut:
    """R6: a room with an unguessable name, sent to the customer."""
    template = request.app.state.settings.screen_share_url
    link = template.format(room=secrets.token_urlsafe(16))
    return await _send(request, pool, dossier_id, who, "screen_share", ScreenShareCmd, link=link)


@router.post(
    "/dossiers/{dossier_id}/workaround",
    response_model=DossierOut,
    responses=REFUSALS,
    summary="Enregistrer le contournement (bug)",
)
async def workaround(
    request: Request,
    dossier_id: uuid.UUID,
    body: WorkaroundIn,
    pool: PoolDep,
    who: TechnicianOrAdmin,
) -> DossierOut:
    """R8: the workaround first (or why there is none); then the developers."""
    return await _send(
        request, pool, dossier_id, who, "record_workaround", WorkaroundCmd, **dict(body)
    )


@router.post(
    "/dossiers/{dossier_id}/close",
    response_model=DossierOut,
    responses=REFUSALS,
    summary="Clore le dossier",
)
async def close(
    request: Request, dossier_id: uuid.UUID, body: CloseIn, pool: PoolDep, who: TechnicianOrAdmin
) -> DossierOut:
    """R10: only with a resolution, which the customer receives by mail."""
    return await _send(
        request, pool, dossier_id, who, "close", CloseCmd, resolution=body.resolution
    )


@router.post(
    "/dossiers/{dossier_id}/confirm",
    response_model=DossierOut,
    responses=REFUSALS,
    summary="Confirmer la résolution (client)",
)
async def confirm(
    request: Request, dossier_id: uuid.UUID, pool: PoolDep, who: Customer
) -> DossierOut:
    return await _send(request, pool, dossier_id, who, "confirm", ActorCmd)


@router.post(
    "/dossiers/{dossier_id}/reopen",
    response_model=DossierOut,
    responses=REFUSALS,
    summary="Rouvrir un dossier clos",
)
async def reopen(
    request: Request,
    dossier_id: uuid.UUID,
    body: ReopenIn,
    pool: PoolDep,
    who: CustomerTechnicianOrAdmin,
) -> DossierOut:
    """R10: one history; the dossier goes back to its technician (or the queue)."""
    return await _send(request, pool, dossier_id, who, "reopen", ReopenCmd, reason=body.reason)
