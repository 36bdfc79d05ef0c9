"""The SMTP and LMTP receiver for the support address (aiosmtpd, in the service's event loop).

Replies are plain ASCII (RFC 5321), French first with an English gloss.

250 only after the message is committed in PostgreSQL (`MailIngestor.ingest`); 451 when it
cannot be stored, so the sending MTA keeps it and retries; 552 with a clear text beyond
`mail_max_bytes`. No answer of this server is ever a 5xx for a message it could have kept:
an unexpected error is a 451 too. Refusals are counted in the mail ledger with their reason.

A receiver stopped mid-message (`stop()`, or the process killed) loses nothing: the sender
never got its 250, so it sends again; a message stored just before the stop is recognised by
its Message-ID (or content hash) and counted once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from assistance.settings import Settings
from services.intake.mail import repo as mail_repo
from services.intake.mail.ingest import Delivery, MailIngestor, StorageUnavailable
from services.intake.mail.rules import pg_safe

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100
LINE_LIMIT = 64 * 1024  # RFC 5321 says 1000; broken mailers send longer lines, keep them

RUNNING: list[MailReceiver] = []  # receivers listening now (tests reach them here)


def _too_big_text(limit: int) -> str:
    return (
        f"552 5.3.4 Message trop volumineux : la limite est de {limit // (1024 * 1024)} Mo "
        f"({limit} octets). Message too big: the limit is {limit} bytes."
    )


class MailHandler:
    """aiosmtpd handler: every accepted message goes through the ingestion."""

    def __init__(self, ingestor: MailIngestor, source: str) -> None:
        self.ingestor = ingestor
        self.source = source

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Trop de destinataires (too many recipients)"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content
        if not isinstance(raw, bytes):
            raw = bytes(raw or b"")
        delivery = Delivery(
            raw=raw,
            source=self.source,
            envelope_from=str(envelope.mail_from or "").strip("<>"),
            envelope_to=tuple(str(r) for r in envelope.rcpt_tos),
            peer=_peer(session),
        )
        try:
            outcome = await self.ingestor.ingest(delivery)
        except StorageUnavailable as exc:
            log.warning("mail from %s not stored, answered 451: %s", delivery.envelope_from, exc)
            return self._each_recipient(
                envelope,
                "451 4.3.0 Stockage momentanement indisponible, reessayez plus tard "
                "(storage unavailable, try again later).",
            )
        except Exception:  # noqa: BLE001 - never a 5xx: the sender keeps the message and retries
            log.exception("mail ingestion failed unexpectedly, answered 451")
            return self._each_recipient(
                envelope, "451 4.3.0 Erreur temporaire, reessayez (temporary error, try again)."
            )
        return self._each_recipient(
            envelope,
            f"250 2.0.0 Message accepte ({outcome.status} {outcome.reference or outcome.mail_id})",
        )

    def _each_recipient(self, envelope: Envelope, line: str) -> str:
        """LMTP answers DATA once per recipient (RFC 2033); SMTP once."""
        if self.source != "lmtp":
            return line
        return "\r\n".join([line] * max(1, len(envelope.rcpt_tos)))

    async def handle_exception(self, error: Exception) -> str:
        log.warning("SMTP session error: %r", error)
        return "451 4.3.0 Erreur temporaire, reessayez (temporary error, try again)."


def _peer(session: Session) -> str | None:
    peer = getattr(session, "peer", None)
    if isinstance(peer, tuple) and peer:
        return f"{peer[0]}:{peer[1]}" if len(peer) > 1 else str(peer[0])
    return str(peer) if peer else None


class _Refusals:
    """Clear texts for aiosmtpd's size and line refusals, each counted in the ledger."""

    ingestor: MailIngestor
    source: str
    max_bytes: int
    envelope: Envelope | None

    async def push(self, status: Any) -> None:  # aiosmtpd's way of answering
        text = status.decode() if isinstance(status, bytes) else str(status)
        reason = None
        if text.startswith("552 Error: message size exceeds") or text.startswith(
            "552 Error: Too much mail data"
        ):
            status, reason = _too_big_text(self.max_bytes), "message_too_big"
        elif text.startswith("500 Line too long"):
            status = f"500 5.5.2 Ligne trop longue (plus de {LINE_LIMIT} octets)."
            reason = "line_too_long"
        if reason is not None:
            await self._record(reason)
        await super().push(status)  # type: ignore[misc]

    async def _record(self, reason: str) -> None:
        mail_from = getattr(self.envelope, "mail_from", None)
        try:
            await mail_repo.ledger_entry(
                self.ingestor.pool,
                self.source,
                "rejected",
                reason=reason,
                envelope_from=pg_safe(str(mail_from)) if mail_from is not None else None,
            )
        except Exception:  # noqa: BLE001 - the refusal stands; its count is best effort
            log.warning("could not record the refusal %s in the mail ledger", reason)


class _SMTP(_Refusals, SMTP):
    line_length_limit = LINE_LIMIT


class _LMTP(_Refusals, LMTP):
    line_length_limit = LINE_LIMIT


class MailReceiver:
    """One listening SMTP or LMTP server; `serve()` runs until stopped or cancelled."""

    def __init__(
        self,
        ingestor: MailIngestor,
        host: str,
        port: int,
        protocol: str = "smtp",
        max_bytes: int = 25 * 1024 * 1024,
        hostname: str = "localhost",
    ) -> None:
        self.ingestor = ingestor
        self.host = host
        self.port = port
        self.protocol = protocol
        self.max_bytes = max_bytes
        self.hostname = hostname
        self.handler = MailHandler(ingestor, protocol)
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self._stopped = asyncio.Event()

    @property
    def name(self) -> str:
        return f"intake mail receiver ({self.protocol} {self.host}:{self.port})"

    def _session(self) -> SMTP:
        cls = _LMTP if self.protocol == "lmtp" else _SMTP
        session = cls(
            self.handler,
            data_size_limit=self.max_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self.hostname,
            ident="Assistance Manao",
            timeout=300,
        )
        session.ingestor = self.ingestor  # for _Refusals: the ledger, the limit's text
        session.source = self.protocol
        session.max_bytes = self.max_bytes
        self._sessions.add(session)
        return session

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopped.clear()
        self._server = await loop.create_server(
            self._session, self.host, self.port, reuse_address=True
        )
        RUNNING.append(self)
        log.info("%s listening", self.name)
        try:
            await self._stopped.wait()
        finally:
            await self._close()

    async def stop(self) -> None:
        """Stop listening and cut every session at once, as a crash would."""
        self._stopped.set()
        await self._close()

    async def _close(self) -> None:
        with contextlib.suppress(ValueError):
            RUNNING.remove(self)
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for session in list(self._sessions):
            transport = getattr(session, "transport", None)
            if transport is not None:
                transport.abort()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)


def receivers(ingestor: MailIngestor, settings: Settings) -> list[MailReceiver]:
    """The receivers the settings ask for (port 0: that one is off)."""
    wanted = [("smtp", settings.mail_listen_port), ("lmtp", settings.mail_lmtp_port)]
    return [
        MailReceiver(
            ingestor,
            settings.mail_listen_host,
            port,
            protocol,
            settings.mail_max_bytes,
            settings.mail_domain,
        )
        for protocol, port in wanted
        if port
    ]


def listening(port: int) -> MailReceiver | None:
    """The receiver listening on `port` in this process, if any."""
    return next((r for r in RUNNING if r.port == port), None)
