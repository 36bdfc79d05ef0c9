"""The optional IMAP poller, for set-ups where the support address is a mailbox (R1).

Every `imap_poll_seconds`: open the folder read-only (EXAMINE), list the UIDs after the last
one stored, fetch each with `BODY.PEEK[]` and hand it to the same ingestion as the SMTP
receiver. The mailbox is never changed — nothing marked seen, moved or deleted — so a
person reading the mailbox sees it as it was; retention is the mailbox owner's affair.

The position (UIDVALIDITY, last UID) moves in the transaction that stores each message: a
crash between two messages resumes after the last one stored, never skipping one. A new
UIDVALIDITY (the folder was recreated) starts again from the first UID; the ingestion's
idempotency on Message-ID (or content hash) drops what was already stored.
"""

from __future__ import annotations

import asyncio
import imaplib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assistance import telemetry
from assistance.settings import Settings
from services.intake.mail import repo as mail_repo
from services.intake.mail.ingest import Delivery, ImapMark, MailIngestor, StorageUnavailable

log = logging.getLogger(__name__)

TIMEOUT = 30.0
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class ImapError(RuntimeError):
    """The IMAP server refused a command."""


@dataclass
class PollResult:
    stored: int = 0  # handed to the ingestion (new, duplicate or quarantined)
    rejected: int = 0  # over the size limit: counted in the ledger, skipped


def _ok(answer: tuple[str, Sequence[Any]], what: str) -> Sequence[Any]:
    status, data = answer
    if status != "OK":
        raise ImapError(f"IMAP {what} refused: {data!r}")
    return data


class ImapPoller:
    def __init__(self, ingestor: MailIngestor, settings: Settings) -> None:
        self.ingestor = ingestor
        self.settings = settings
        self.folder = settings.imap_folder
        self.account = f"{settings.imap_user}@{settings.imap_host}:{settings.imap_port}"

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except (OSError, imaplib.IMAP4.error, ImapError, StorageUnavailable) as exc:
                log.warning("IMAP poll of %s failed, next try later: %r", self.account, exc)
            await asyncio.sleep(self.settings.imap_poll_seconds)

    async def poll_once(self) -> PollResult:
        """Store every message after the remembered UID; returns what was done."""
        client = await asyncio.to_thread(self._open)
        try:
            return await self._poll(client)
        finally:
            await asyncio.to_thread(self._close, client)

    def _open(self) -> imaplib.IMAP4:
        s = self.settings
        cls = imaplib.IMAP4_SSL if s.imap_ssl else imaplib.IMAP4
        client = cls(s.imap_host, s.imap_port, timeout=TIMEOUT)
        try:
            _ok(client.login(s.imap_user, s.imap_password), "LOGIN")
            _ok(client.select(_quote(self.folder), readonly=True), "EXAMINE")
        except BaseException:
            self._close(client)
            raise
        return client

    @staticmethod
    def _close(client: imaplib.IMAP4) -> None:
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - the connection is going away anyway
            log.debug("IMAP logout failed", exc_info=True)

    async def _poll(self, client: imaplib.IMAP4) -> PollResult:
        result = PollResult()
        _, values = client.response("UIDVALIDITY")
        if not values or values[0] is None:
            raise ImapError(f"no UIDVALIDITY for {self.folder}")
        uidvalidity = int(values[-1])
        with telemetry.quiet():  # polled: a mail that arrives has its own span (the ingestion)
            position = await mail_repo.imap_position(self.ingestor.pool, self.account, self.folder)
        last = 0
        if position is not None and position["uidvalidity"] == uidvalidity:
            last = position["last_uid"]
        elif position is not None:
            log.warning("%s %s: UIDVALIDITY changed, reading again", self.account, self.folder)
        found = await asyncio.to_thread(
            lambda: _ok(client.uid("SEARCH", f"UID {last + 1}:*"), "SEARCH")
        )
        listed = found[0] if found and isinstance(found[0], bytes) else b""
        uids = sorted(int(u) for u in listed.split() if int(u) > last)
        for uid in uids:
            mark = ImapMark(self.account, self.folder, uidvalidity, uid)
            size = await asyncio.to_thread(self._size, client, uid)
            if size is not None and size > self.settings.mail_max_bytes:
                await self._reject(mark, size)
                result.rejected += 1
                continue
            raw = await asyncio.to_thread(self._fetch, client, uid)
            if raw is None:  # expunged meanwhile by someone else
                continue
            await self.ingestor.ingest(
                Delivery(raw=raw, source="imap", peer=self.settings.imap_host, imap=mark)
            )
            result.stored += 1
        return result

    @staticmethod
    def _size(client: imaplib.IMAP4, uid: int) -> int | None:
        data = _ok(client.uid("FETCH", str(uid), "(RFC822.SIZE)"), "FETCH SIZE")
        for item in data:
            chunk = item[0] if isinstance(item, tuple) else item
            if isinstance(chunk, bytes) and (match := _SIZE.search(chunk)):
                return int(match[1])
        return None

    @staticmethod
    def _fetch(client: imaplib.IMAP4, uid: int) -> bytes | None:
        data = _ok(client.uid("FETCH", str(uid), "(BODY.PEEK[])"), "FETCH")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                return item[1]
        return None

    async def _reject(self, mark: ImapMark, size: int) -> None:
        async with self.ingestor.pool.acquire() as conn, conn.transaction():
            await mail_repo.ledger_entry(
                conn, "imap", "rejected", reason="message_too_big", size_bytes=size
            )
            await mail_repo.imap_advance(
                conn, mark.account, mark.folder, mark.uidvalidity, mark.uid
            )


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
