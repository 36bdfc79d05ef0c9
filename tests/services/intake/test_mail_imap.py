"""The IMAP poller (R1) against a real IMAP server: Debian's dovecot, started here as a child
process on a free port with its own minimal configuration (plain-text login on loopback, one
maildir, a static user)."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import imaplib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from assistance import db
from assistance.directory import Role
from assistance.settings import Settings
from deploy.local.stack import free_port
from services.intake.mail.imap import ImapPoller, PollResult
from services.intake.mail.ingest import Delivery, MailIngestor, Outcome, StorageUnavailable
from tests.services.intake.mail_helpers import build_mail, delta, ledger, send, unique

PASSWORD = "secret-imap"
USER = "support"


def _dovecot_binary() -> str | None:
    return shutil.which("dovecot", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


@dataclass
class Dovecot:
    port: int
    directory: Path

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(USER, PASSWORD)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        client = self.client()
        try:
            status, data = client.append(folder, None, None, raw)
            assert status == "OK", data
        finally:
            client.logout()

    def flags(self, folder: str = "INBOX") -> list[bytes]:
        client = self.client()
        try:
            client.select(folder, readonly=True)
            _, data = client.uid("FETCH", "1:*", "(FLAGS)")
            return [item for item in data if isinstance(item, bytes)]
        finally:
            client.logout()


def _config(directory: Path, port: int) -> str:
    if os.geteuid() == 0:
        mail = pwd.getpwnam("dovecot")
        internal, login = "dovecot", "dovenull"
    else:  # dovecot runs unprivileged as the current user
        mail = pwd.getpwuid(os.geteuid())
        internal = login = mail.pw_name
    maildir = directory / "mail"
    maildir.mkdir()
    os.chown(maildir, mail.pw_uid, mail.pw_gid)
    return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {directory}/run
state_dir = {directory}/state
log_path = {directory}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{maildir}/%u
default_internal_user = {internal}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name}
default_login_user = {login}
first_valid_uid = {mail.pw_uid}
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={maildir}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    binary = _dovecot_binary()
    if binary is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd; .ci/run does it)")
    directory = Path(tempfile.mkdtemp(prefix="dovecot-"))  # short: unix socket paths
    directory.chmod(0o755)
    port = free_port()
    (directory / "dovecot.conf").write_text(_config(directory, port))
    process = subprocess.Popen(
        [binary, "-F", "-c", str(directory / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Dovecot(port, directory)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                server.client().logout()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = directory / "dovecot.log"
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    raise RuntimeError(f"dovecot did not start:\n{tail}") from None
                time.sleep(0.1)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def pool(system) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(system.settings.database_url, 2)
    try:
        yield pool
    finally:
        await pool.close()


def _settings(system, dovecot: Dovecot, folder: str) -> Settings:
    return system.settings.model_copy(
        update={
            "imap_host": "127.0.0.1",
            "imap_port": dovecot.port,
            "imap_ssl": False,
            "imap_user": USER,
            "imap_password": PASSWORD,
            "imap_folder": folder,
            "mail_max_bytes": 200_000,
        }
    )


def _create(dovecot: Dovecot, folder: str) -> None:
    client = dovecot.client()
    try:
        client.create(folder)
    finally:
        client.logout()


class FailingOnce(MailIngestor):
    """Storage fails for one message, once: the poller must not move past it."""

    def __init__(self, *args: object, fail_subject: bytes) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.fail_subject = fail_subject
        self.failed = False

    async def ingest(self, delivery: Delivery) -> Outcome:
        if not self.failed and self.fail_subject in delivery.raw:
            self.failed = True
            raise StorageUnavailable("disk full")
        return await super().ingest(delivery)


async def test_imap_poll_stores_each_message_once_and_never_changes_the_mailbox(
    http: httpx.AsyncClient, system, pool, dovecot: Dovecot
) -> None:
    folder = f"Support{free_port()}"
    await asyncio.to_thread(_create, dovecot, folder)
    settings = _settings(system, dovecot, folder)
    tech = system.tokens[Role.technician]
    senders = [unique("imap") for _ in range(3)]
    mails = [
        build_mail(senders[0], "Par la boîte IMAP"),
        build_mail(senders[1], "Sans identifiant", message_id=False),
        build_mail(senders[2], "Énorme", "x" * 300_000),  # over the 200 kB limit of this test
    ]
    for raw in mails:
        await asyncio.to_thread(dovecot.append, raw, folder)
    before = await ledger(http, tech)

    # storage fails on the second message: the first is stored, the position stops there
    failing = FailingOnce(pool, settings, fail_subject=b"Sans identifiant")
    with pytest.raises(StorageUnavailable):
        await ImapPoller(failing, settings).poll_once()
    poller = ImapPoller(MailIngestor(pool, settings), settings)
    assert (
        await pool.fetchrow(
            "SELECT last_uid FROM intake.imap_state WHERE account = $1 AND folder = $2",
            poller.account,
            folder,
        )
    )["last_uid"] == 1

    # the next poll resumes after it
    assert await poller.poll_once() == PollResult(stored=1, rejected=1)
    assert await poller.poll_once() == PollResult(stored=0, rejected=0)
    assert delta(before, await ledger(http, tech)) == {
        "received": 2,
        "opened": 2,
        "rejected": 1,
    }
    for sender in senders[:2]:
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM intake.requests WHERE requester_email = $1 AND "
                "channel = 'mail'",
                sender,
            )
            == 1
        )
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM intake.mail_messages WHERE source = 'imap' AND "
            "from_address = ANY($1::text[])",
            senders,
        )
        == 2
    )

    # the mailbox is as it was: three messages, none marked seen or deleted
    flags = await asyncio.to_thread(dovecot.flags, folder)
    assert len(flags) == 3
    assert not any(b"\\Seen" in f or b"\\Deleted" in f for f in flags)

    # a new message, and one already delivered over SMTP: each dossier exists once
    smtp_raw = build_mail(unique("both"), "Livré deux fois")
    await send(system.settings.mail_listen_port, smtp_raw, "both@exemple-client.fr")
    fresh = build_mail(unique("imap"), "Nouveau")
    await asyncio.to_thread(dovecot.append, smtp_raw, folder)
    await asyncio.to_thread(dovecot.append, fresh, folder)
    middle = await ledger(http, tech)
    assert await poller.poll_once() == PollResult(stored=2, rejected=0)
    assert delta(middle, await ledger(http, tech)) == {
        "received": 2,
        "opened": 1,
        "duplicates": 1,
    }

    # the folder recreated (new UIDVALIDITY): read again from the start, nothing doubled
    await pool.execute(
        "UPDATE intake.imap_state SET uidvalidity = uidvalidity + 1 WHERE folder = $1", folder
    )
    again = await ledger(http, tech)
    assert await poller.poll_once() == PollResult(stored=4, rejected=1)
    assert delta(again, await ledger(http, tech)) == {
        "received": 4,
        "duplicates": 4,
        "rejected": 1,
    }


async def test_imap_poller_survives_a_wrong_password(system, pool, dovecot: Dovecot) -> None:
    settings = _settings(system, dovecot, "INBOX").model_copy(
        update={"imap_password": "wrong", "imap_poll_seconds": 0.05}
    )
    poller = ImapPoller(MailIngestor(pool, settings), settings)
    with pytest.raises(imaplib.IMAP4.error):
        await poller.poll_once()
    running = asyncio.create_task(poller.run())  # logs and keeps polling
    await asyncio.sleep(0.3)
    assert not running.done()
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
