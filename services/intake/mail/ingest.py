"""Mail ingestion (R1): one delivered message → stored raw → opened, joined or quarantined.

Durable before acknowledged: the raw message, its outcome (a dossier opened through the same
path as a web deposit, a reply queued for its dossier's workflow, or a quarantine entry with
its reason) and its ledger line commit in one transaction, before the receiver answers 250 or
the IMAP poller moves past the message. If even a fallback store fails, `StorageUnavailable`
tells the receiver to answer 451 so the sending MTA retries.

Idempotent on Message-ID (or a hash of the content when there is none): a second delivery of
the same message is counted as a duplicate and changes nothing else.

The rules, in the order they apply (each refusal is a quarantine with its reason, visible to
technicians, who can release the mail into a dossier or discard it):
1. no readable sender;
2. our own mail coming back (our signed Message-ID, our address in From or X-Loop);
3. delivery status notifications: failed recipients are marked bouncing and technicians
   alerted once per address; other reports (read receipts, abuse reports);
4. a sender who is staff: mail never acts for a technician (use the back office);
5. loop markers — Auto-Submitted other than "no", Precedence bulk/list/junk, List-* headers,
   an empty Return-Path or MAIL FROM, X-Autoreply: never an automatic answer, so never a new
   dossier (its acknowledgement would be one) and never a reply that would reopen one;
6. the per-sender rate limit (runaway senders);
7. threading: a signed Message-ID of ours in In-Reply-To/References joins that dossier; the
   subject token `[D-…]` alone joins only when the sender is the dossier's requester or of
   its organisation, otherwise quarantine;
8. anything else opens a dossier, channel `mail`.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from opentelemetry import trace
from pydantic import ValidationError

from assistance import directory, outbox, telemetry
from assistance.business_time import BusinessCalendar
from assistance.directory import STAFF
from assistance.events import Event
from assistance.mail import dossier_of_reply, reference_in_subject, verify_message_id
from assistance.settings import Settings
from assistance.text import cleaned
from services.intake.mail import auth as mail_auth
from services.intake.mail import dossiers
from services.intake.mail import repo as mail_repo
from services.intake.mail.headers import as_email_message
from services.intake.mail.parse import ParsedMail, parse
from services.intake.mail.rules import (
    BURST_WINDOW,
    MAX_DESCRIPTION,
    REASONS,
    choose_software,
    content_hash,
    dedupe_key,
    description_of,
    loop_marker,
    pg_safe,
    strip_quoted,
    subject_of,
)
from services.intake.models import DepositIn, Requester
from services.intake.relay import SEND_MAIL

log = logging.getLogger(__name__)
_TRACER = telemetry.tracer("intake.mail")


class StorageUnavailable(Exception):
    """The message could not be stored: the receiver answers 451 and the sender retries."""


@dataclass(frozen=True)
class ImapMark:
    """Where an IMAP message came from; the poller's position moves with the message."""

    account: str
    folder: str
    uidvalidity: int
    uid: int


@dataclass(frozen=True)
class Delivery:
    raw: bytes
    source: str  # smtp | lmtp | imap
    envelope_from: str | None = None  # MAIL FROM; "" is the null sender <>; None unknown
    envelope_to: tuple[str, ...] = ()
    peer: str | None = None
    imap: ImapMark | None = None


@dataclass(frozen=True)
class Outcome:
    status: str  # opened | joined | quarantined | duplicate
    mail_id: uuid.UUID
    dossier_id: uuid.UUID | None = None
    reference: str | None = None
    reason: str | None = None


@dataclass
class Decision:
    action: str  # open | join | quarantine
    reason: str | None = None
    detail: str | None = None
    reference: str | None = None
    dossier_id: uuid.UUID | None = None
    threaded_by: str | None = None
    deposit: DepositIn | None = None
    organisation_id: uuid.UUID | None = None
    software_guessed: bool = False
    bounces: list[dict[str, str]] = field(default_factory=list)


# What the text policy cleans in a mail (it cannot refuse one, issue 11), and how a person
# reads the name of each field in the notice added to the dossier.
_ONE_LINE = ("from_name", "subject", "in_reply_to", "references", "message_id", "from_address")
_MULTI_LINE = ("text", "html")
CLEANED_LABELS = {
    "from_name": "nom de l'expéditeur",
    "subject": "objet",
    "text": "texte",
    "html": "texte",
    "attachments": "noms des pièces jointes",
}


def _clean(parsed: ParsedMail) -> ParsedMail:
    """The text policy (`assistance.text`), cleaning instead of refusing: no NUL nor control
    character anywhere, no line break in a single-line field (the From display name ends up
    in mail headers later); what changed is remembered in `parsed.cleaned`."""
    for name in (*_ONE_LINE, *_MULTI_LINE):
        value, changed = cleaned(getattr(parsed, name), single_line=name in _ONE_LINE)
        setattr(parsed, name, pg_safe(value))
        if changed and name not in parsed.cleaned:
            parsed.cleaned.append(name)
    parsed.message_id = parsed.message_id or None
    parsed.from_address = parsed.from_address or None
    for att in parsed.attachments:
        for name in ("filename", "declared_type", "content_id"):
            value, changed = cleaned(getattr(att, name), single_line=True)
            setattr(att, name, pg_safe(value))
            if changed and "attachments" not in parsed.cleaned:
                parsed.cleaned.append("attachments")
    return parsed


def cleaned_notice(parsed: ParsedMail) -> str:
    """The line the dossier keeps when the mail's text had to be cleaned ("" otherwise)."""
    labels = [label for name, label in CLEANED_LABELS.items() if name in parsed.cleaned]
    if not parsed.cleaned:
        return ""
    where = ", ".join(dict.fromkeys(labels)) or "en-têtes"
    return (
        "\n\n[Texte nettoyé à la réception : caractères de contrôle retirés ou sauts de ligne "
        f"repliés ({where}).]"
    )


def _with_notice(text: str, notice: str) -> str:
    if not notice:
        return text
    return text[: MAX_DESCRIPTION - len(notice)] + notice


def _details(parsed: ParsedMail, decision: Decision, authserv_id: str) -> dict[str, Any]:
    details: dict[str, Any] = {
        "authentication": mail_auth.verdict_of(parsed.headers, authserv_id),
        "headers": parsed.headers[:60],
        "defects": parsed.defects[:30],
        "auto_submitted": parsed.auto_submitted,
        "precedence": parsed.precedence,
        "list_headers": parsed.list_headers[:10],
        "return_path": parsed.return_path,
        "report_type": parsed.report_type,
    }
    if parsed.report is not None:
        details["delivery_report"] = {
            "original_message_id": parsed.report.original_message_id,
            "recipients": [vars(r) for r in parsed.report.recipients[:50]],
        }
    if parsed.cleaned:
        details["text_cleaned"] = parsed.cleaned
    if decision.action == "open":
        details["requester_verified"] = decision.organisation_id is not None
        details["software_guessed"] = decision.software_guessed
    return pg_safe(details)


# --- the use case --------------------------------------------------------------------------------


class MailIngestor:
    """Stores and routes delivered messages; shared by the SMTP/LMTP receiver and IMAP poller."""

    def __init__(
        self, pool: asyncpg.Pool, settings: Settings, calendar: BusinessCalendar | None = None
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.calendar = calendar or settings.calendar()

    async def ingest(self, delivery: Delivery) -> Outcome:
        """Store and route one message; raises `StorageUnavailable` only if nothing was stored.

        One span per arriving mail (SMTP, LMTP or IMAP), the root of its trace: the outbox rows
        written meanwhile carry its context, so a mail deposit is one trace like a web one."""
        with _TRACER.start_as_current_span(
            f"mail receive {delivery.source}",
            kind=trace.SpanKind.SERVER,
            attributes={"mail.source": delivery.source, "mail.size": len(delivery.raw)},
        ) as span:
            outcome = await self._ingest_delivery(delivery)
            span.set_attribute("mail.outcome", outcome.status)
            return outcome

    async def _ingest_delivery(self, delivery: Delivery) -> Outcome:
        received_at = datetime.now(UTC)
        try:
            parsed = _clean(parse(delivery.raw, self.settings.mail_max_attachment_bytes))
            key = dedupe_key(parsed, delivery.raw)
        except Exception:  # noqa: BLE001 - parse never raises; this is the belt and braces
            log.exception("mail parsing failed")
            parsed, key = ParsedMail(defects=["parsing failed"]), None
        if key is not None:
            for _ in range(2):  # a concurrent first delivery of the same message: read it
                try:
                    async with self.pool.acquire() as conn, conn.transaction():
                        return await self._ingest(conn, delivery, parsed, key, received_at)
                except asyncpg.UniqueViolationError:
                    continue
                except Exception:  # noqa: BLE001 - fall back to keeping the raw message
                    log.exception("mail ingestion failed; keeping the raw message")
                    break
        return await self._keep_raw(delivery, parsed, received_at, key)

    async def _keep_raw(
        self, delivery: Delivery, parsed: ParsedMail, received_at: datetime, key: str | None
    ) -> Outcome:
        """Last resort: the bytes in quarantine, so nothing acknowledged is ever lost."""
        key = key or f"sha256:{content_hash(delivery.raw)}"
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await mail_repo.lock_key(conn, key)
                existing = await mail_repo.find_by_key(conn, key)
                if existing is not None:
                    return await self._duplicate(conn, delivery, existing)
                mail_id = uuid.uuid4()
                bare = ParsedMail(
                    message_id=parsed.message_id,
                    from_address=parsed.from_address,
                    subject=parsed.subject,
                    defects=parsed.defects,
                )
                await self._store(
                    conn, mail_id, key, bare, delivery, received_at, {}, "quarantined"
                )
                await mail_repo.quarantine(
                    conn, mail_id, "internal_error", REASONS["internal_error"]
                )
                await self._finish(
                    conn, delivery, "quarantined", mail_id, "internal_error", received_at
                )
                return Outcome("quarantined", mail_id, reason="internal_error")
        except Exception as exc:
            raise StorageUnavailable(repr(exc)) from exc

    async def _ingest(
        self,
        conn: asyncpg.Connection,
        delivery: Delivery,
        parsed: ParsedMail,
        key: str,
        received_at: datetime,
    ) -> Outcome:
        await mail_repo.lock_key(conn, key)
        existing = await mail_repo.find_by_key(conn, key)
        if existing is not None:
            return await self._duplicate(conn, delivery, existing)
        decision = await self.decide(conn, parsed, delivery, received_at)
        mail_id = uuid.uuid4()
        details = _details(parsed, decision, self.settings.mail_trusted_authserv_id)
        if decision.action == "quarantine":
            assert decision.reason is not None
            await self._store(
                conn,
                mail_id,
                key,
                parsed,
                delivery,
                received_at,
                details,
                "quarantined",
                reference=decision.reference,
            )
            await mail_repo.quarantine(
                conn,
                mail_id,
                decision.reason,
                decision.detail or REASONS[decision.reason],
                decision.reference,
            )
            await self._bounced(conn, decision, mail_id, received_at)
            await self._finish(conn, delivery, "quarantined", mail_id, decision.reason, received_at)
            return Outcome(
                "quarantined", mail_id, reference=decision.reference, reason=decision.reason
            )
        if decision.action == "join":
            assert decision.dossier_id is not None
            await self._store(
                conn,
                mail_id,
                key,
                parsed,
                delivery,
                received_at,
                details,
                "joined",
                dossier_id=decision.dossier_id,
                reference=decision.reference,
                threaded_by=decision.threaded_by,
            )
            await self.deliver_reply(conn, mail_id, decision.dossier_id, parsed, received_at)
            await self._finish(conn, delivery, "joined", mail_id, decision.threaded_by, received_at)
            return Outcome("joined", mail_id, decision.dossier_id, decision.reference)
        await self._store(conn, mail_id, key, parsed, delivery, received_at, details, "opened")
        opened = await self.open_dossier(conn, mail_id, parsed, decision, received_at)
        await self._finish(conn, delivery, "opened", mail_id, at=received_at)
        return Outcome("opened", mail_id, opened.id, opened.reference)

    async def _duplicate(
        self, conn: asyncpg.Connection, delivery: Delivery, existing: asyncpg.Record
    ) -> Outcome:
        await mail_repo.count_duplicate(conn, existing["id"])
        await self._finish(conn, delivery, "duplicate", existing["id"])
        return Outcome("duplicate", existing["id"], existing["dossier_id"], existing["reference"])

    async def _store(
        self,
        conn: asyncpg.Connection,
        mail_id: uuid.UUID,
        key: str,
        parsed: ParsedMail,
        delivery: Delivery,
        received_at: datetime,
        details: dict[str, Any],
        outcome: str,
        **kwargs: Any,
    ) -> None:
        await mail_repo.store_message(
            conn,
            mail_id=mail_id,
            dedupe_key=pg_safe(key),
            parsed=parsed,
            raw=delivery.raw,
            sha256=hashlib.sha256(delivery.raw).hexdigest(),
            source=delivery.source,
            envelope_from=pg_safe(delivery.envelope_from),
            envelope_to=pg_safe(list(delivery.envelope_to)),
            peer=delivery.peer,
            received_at=received_at,
            details=details,
            outcome=outcome,
            **kwargs,
        )

    async def _finish(
        self,
        conn: asyncpg.Connection,
        delivery: Delivery,
        entry: str,
        mail_id: uuid.UUID,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> None:
        await mail_repo.ledger_entry(
            conn,
            delivery.source,
            entry,
            mail_id,
            reason,
            pg_safe(delivery.envelope_from),
            len(delivery.raw),
            at,
        )
        if delivery.imap is not None:
            mark = delivery.imap
            await mail_repo.imap_advance(
                conn, mark.account, mark.folder, mark.uidvalidity, mark.uid
            )

    # --- deciding --------------------------------------------------------------------------------

    async def decide(
        self,
        conn: asyncpg.Connection,
        parsed: ParsedMail,
        delivery: Delivery,
        received_at: datetime,
    ) -> Decision:
        settings = self.settings
        sender = parsed.from_address
        if sender is None:
            return Decision("quarantine", "no_sender")
        own = {settings.mail_from.lower(), settings.support_address.lower()}
        if (
            (parsed.message_id and verify_message_id(parsed.message_id, settings.mail_signing_key))
            or sender.lower() in own
            or any(address in loop for loop in parsed.x_loop for address in own)
        ):
            return Decision("quarantine", "own_mail")
        if parsed.report is not None:
            return self._bounce(parsed)
        if parsed.report_type is not None:
            return Decision("quarantine", "report", reference=self._signed_reference(parsed))
        if sender.lower() in await self._staff(conn):
            return Decision("quarantine", "staff_sender", reference=self._any_reference(parsed))
        forged = await self._dmarc_failed(conn, parsed, sender)
        if forged is not None:
            return forged
        marker = loop_marker(parsed, delivery.envelope_from)
        if marker is not None:
            return Decision("quarantine", marker, reference=self._any_reference(parsed))
        limit = settings.mail_rate_limit_per_hour
        if limit and (
            await mail_repo.recent_from(conn, sender, received_at - timedelta(hours=1)) >= limit
        ):
            return Decision(
                "quarantine",
                "rate_limited",
                f"Plus de {limit} mails de {sender} dans l'heure : mis de côté.",
                reference=self._any_reference(parsed),
            )
        threaded = await self._thread(conn, parsed, sender)
        if threaded is not None:
            return threaded
        burst = await mail_repo.opened_since(
            conn, sender, pg_safe(parsed.subject[:2000]), received_at - BURST_WINDOW
        )
        if burst is not None:  # one acknowledgement per burst (issue 14)
            return Decision("join", reference=burst["reference"], dossier_id=burst["dossier_id"])
        return await self._plan_opening(conn, parsed, delivery, sender)

    async def _dmarc_failed(
        self, conn: asyncpg.Connection, parsed: ParsedMail, sender: str
    ) -> Decision | None:
        """Issue 13: our trusted MTA says DMARC failed for the From domain, and that domain is a
        client organisation's (or the sender a known user's): a forged customer, quarantined."""
        verdict = mail_auth.dmarc_of(parsed.headers, self.settings.mail_trusted_authserv_id)
        if verdict is None or verdict.result != "fail":
            return None
        domain = verdict.domain or sender.rpartition("@")[2].lower()
        if await directory.organisation_for_email(conn, sender) is None and (
            await directory.organisation_for_email(conn, f"postmaster@{domain}") is None
        ):
            return None  # an unknown domain: DMARC says nothing we can weigh
        return Decision(
            "quarantine",
            "dmarc_fail",
            f"DMARC en échec pour {domain} selon {self.settings.mail_trusted_authserv_id} : "
            "l'expéditeur est probablement usurpé.",
            reference=self._any_reference(parsed),
        )

    def _signed_reference(self, parsed: ParsedMail) -> str | None:
        try:
            found = dossier_of_reply(
                as_email_message(parsed.in_reply_to, parsed.references),
                self.settings.mail_signing_key,
            )
        except Exception:  # noqa: BLE001 - unreadable threading headers: no thread
            return None
        return found[0] if found else None

    def _any_reference(self, parsed: ParsedMail) -> str | None:
        return self._signed_reference(parsed) or reference_in_subject(parsed.subject)

    async def _staff(self, conn: asyncpg.Connection) -> set[str]:
        emails: set[str] = set()
        for role in sorted(STAFF):
            emails.update(e.lower() for e in await directory.emails_with_role(conn, role))
        return emails

    def _bounce(self, parsed: ParsedMail) -> Decision:
        assert parsed.report is not None
        reference = None
        if parsed.report.original_message_id:
            found = verify_message_id(
                parsed.report.original_message_id, self.settings.mail_signing_key
            )
            reference = found[0] if found else None
        reference = reference or self._any_reference(parsed)
        failed = [r for r in parsed.report.recipients if r.failed]
        bounces = [
            {"address": r.address, "status": r.status, "diagnostic": r.diagnostic} for r in failed
        ]
        if failed:
            listed = ", ".join(r.address for r in failed[:5])
            detail = f"Avis de non-distribution : {listed} marquée(s) en échec."
        else:
            detail = "Avis de remise (retard ou succès) : aucune adresse en échec."
        return Decision("quarantine", "bounce", detail, reference=reference, bounces=bounces)

    async def _thread(
        self, conn: asyncpg.Connection, parsed: ParsedMail, sender: str
    ) -> Decision | None:
        signed = self._signed_reference(parsed)
        if signed is not None:
            request = await mail_repo.request_by_reference(conn, signed)
            if request is None:
                return Decision("quarantine", "unknown_dossier", reference=signed)
            if not await self._is_requester_side(conn, sender, request):  # issue 13
                return Decision(
                    "quarantine",
                    "reply_sender_mismatch",
                    f"Réponse au dossier {signed}, mais {sender} n'est ni le demandeur ni de "
                    "son organisation.",
                    reference=signed,
                )
            return Decision(
                "join", reference=signed, dossier_id=request["id"], threaded_by="signed_id"
            )
        token = reference_in_subject(parsed.subject)
        if token is None:
            return None
        request = await mail_repo.request_by_reference(conn, token)
        if request is None:
            return Decision("quarantine", "unknown_dossier", reference=token)
        if await self._is_requester_side(conn, sender, request):
            return Decision(
                "join", reference=token, dossier_id=request["id"], threaded_by="subject_token"
            )
        return Decision(
            "quarantine",
            "sender_mismatch",
            f"Le sujet cite {token}, mais {sender} n'est ni le demandeur ni de son organisation.",
            reference=token,
        )

    async def _is_requester_side(
        self, conn: asyncpg.Connection, sender: str, request: asyncpg.Record
    ) -> bool:
        if sender.lower() == str(request["requester_email"]).lower():
            return True
        organisation = request["organisation_id"]
        if organisation is None:
            return False
        return await directory.organisation_for_email(conn, sender) == organisation

    async def _plan_opening(
        self, conn: asyncpg.Connection, parsed: ParsedMail, delivery: Delivery, sender: str
    ) -> Decision:
        softwares = {str(s["code"]): str(s["name"]) for s in await directory.list_softwares(conn)}
        software, subject, guessed = choose_software(
            parsed.subject,
            [*delivery.envelope_to, *parsed.to, *parsed.cc],
            softwares,
            self.settings.mail_default_software,
        )
        if software is None:
            return Decision("quarantine", "no_software")
        name = parsed.from_name.strip() or sender.partition("@")[0]
        try:
            deposit = DepositIn(
                requester=Requester(email=sender, name=name[:200]),
                software=software,
                subject=subject_of(subject),
                description=_with_notice(description_of(parsed), cleaned_notice(parsed)),
            )
        except ValidationError as exc:
            errors = exc.errors()
            where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
            why = errors[0]["msg"] if errors else ""
            return Decision(
                "quarantine",
                "invalid_request",
                f"Le mail ne peut pas devenir une demande : {where} {why}"[:500],
            )
        return Decision(
            "open",
            deposit=deposit,
            organisation_id=await directory.organisation_for_email(conn, sender),
            software_guessed=guessed,
        )

    # --- effects ---------------------------------------------------------------------------------

    async def open_dossier(
        self,
        conn: asyncpg.Connection,
        mail_id: uuid.UUID,
        parsed: ParsedMail,
        decision: Decision,
        received_at: datetime,
    ) -> Any:
        """R1: the same path as a web deposit, channel `mail`, threaded on the Message-ID."""
        assert decision.deposit is not None
        return await dossiers.open_dossier(
            conn,
            mail_id,
            decision.deposit,
            message_id=parsed.message_id,
            received_at=received_at,
            settings=self.settings,
            calendar=self.calendar,
            organisation_id=decision.organisation_id,
            deposited_by=None,
            # not in DossierOpening yet: carried in the intake.request.received event
            software_guessed=decision.software_guessed,
            text_cleaned=parsed.cleaned,
        )

    async def deliver_reply(
        self,
        conn: asyncpg.Connection,
        mail_id: uuid.UUID,
        dossier_id: uuid.UUID,
        parsed: ParsedMail,
        received_at: datetime,
    ) -> None:
        """R1: the reply reaches its dossier's workflow through the outbox (even with Temporal
        down, R13)."""
        text = strip_quoted(parsed.text)
        if len(text) > MAX_DESCRIPTION:
            text = text[: MAX_DESCRIPTION - 1] + "…"
        await dossiers.join_dossier(
            conn,
            mail_id,
            dossier_id,
            text=_with_notice(text or dossiers.NO_TEXT, cleaned_notice(parsed)),
            author_email=parsed.from_address,
            author_name=parsed.from_name,
            message_id=parsed.message_id,
            received_at=received_at,
        )

    async def _bounced(
        self,
        conn: asyncpg.Connection,
        decision: Decision,
        mail_id: uuid.UUID,
        at: datetime,
    ) -> None:
        """DSN: mark each failed address bouncing; alert every technician, once per address."""
        if not decision.bounces:
            return
        staff = await self._staff(conn)
        own = {self.settings.mail_from.lower(), self.settings.support_address.lower()}
        technicians = await directory.emails_with_role(conn, directory.Role.technician)
        request = (
            await mail_repo.request_by_reference(conn, decision.reference)
            if decision.reference
            else None
        )
        for bounce in decision.bounces:
            address = bounce["address"]
            first = await mail_repo.mark_bouncing(
                conn,
                address,
                bounce["status"],
                bounce["diagnostic"],
                decision.reference,
                mail_id,
                at,
            )
            if not first or address.lower() in staff | own:
                continue  # a bouncing staff address is never alerted by mail (no bounce loop)
            await outbox.enqueue_event(
                conn,
                "intake",
                Event(
                    id=f"{mail_id}:bounced:{address.lower()}",
                    type="intake.address.bounced",
                    occurred_at=at,
                    data={
                        "address": address.lower(),
                        "status": bounce["status"],
                        "diagnostic": bounce["diagnostic"],
                        "reference": decision.reference,
                        "dossier_id": str(request["id"]) if request else None,
                        "mail_id": str(mail_id),
                    },
                ),
            )
            for technician in technicians:
                await outbox.enqueue(
                    conn,
                    "intake",
                    SEND_MAIL,
                    self._bounce_alert(technician, address, bounce, decision.reference, mail_id),
                )

    def _bounce_alert(
        self,
        to: str,
        address: str,
        bounce: dict[str, str],
        reference: str | None,
        mail_id: uuid.UUID,
    ) -> dict[str, Any]:
        settings = self.settings
        about = f" [{reference}]" if reference else ""
        status = bounce["status"] or "inconnu"
        lines = [
            "Bonjour,",
            "",
            f"Nos mails à {address} ne sont plus distribués (statut {status}).",
        ]
        if bounce["diagnostic"]:
            lines.append(f"Motif donné par le serveur : {bounce['diagnostic']}")
        if reference:
            lines.append(f"Dossier concerné : {reference}")
        lines += [
            "",
            "Le client ne reçoit plus nos réponses : contactez-le autrement (téléphone, autre "
            "contact de son organisation) et corrigez son adresse.",
            f"Avis de non-distribution : {settings.public_url}/api/v1/mail/messages/{mail_id}",
            "",
            "— Assistance Manao (message automatique)",
        ]
        digest = hashlib.sha256(f"{mail_id}:{address}:{to}".encode()).hexdigest()[:16]
        return {
            "to": to,
            "subject": f"Adresse en échec : {address}{about}",
            "text": "\n".join(lines),
            "message_id": f"<bounce.{digest}@{settings.mail_domain}>",
        }
