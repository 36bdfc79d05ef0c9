"""Mail sent at most once in practice (issue 11, item 8; decision 0015), against the real
SMTP server of the stack (the mail catcher, over loopback) and the real PostgreSQL.

The row is committed `sending` with a lease before the SMTP transaction and `sent` after it;
a crash between the two (simulated: the SMTP transaction completes, the process "dies" before
the mark) leaves the row `sending`: nothing is sent again while the lease runs, and once it has
run out the mail is sent again with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage

import aiosmtplib
import asyncpg
import pytest

from assistance import db, mail_once
from deploy.local.stack import LocalStack, free_port


@pytest.fixture(scope="module")
async def pool(system) -> AsyncIterator[asyncpg.Pool]:
    connections = await db.create_pool(system.settings.database_url, 4)
    yield connections
    await connections.close()


def message() -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "assistance@manao.eu"
    mail["To"] = "claire.martin@dupont-sa.fr"
    mail["Subject"] = "[D-2026-910001] Votre demande"
    mail["Message-ID"] = f"<test.{uuid.uuid4().hex}@assistance.manao.eu>"
    mail.set_content("Bonjour Claire,\n\nVotre demande est enregistrée.\n")
    return mail


def caught(stack: LocalStack, message_id: str) -> int:
    return sum(1 for m in stack.mail.messages if m.message()["Message-ID"] == message_id)


async def row(pool: asyncpg.Pool, message_id: str) -> asyncpg.Record:
    return await pool.fetchrow(
        "SELECT state, attempts, lease_until, sent_at, source, recipient FROM bus.sent_mail "
        "WHERE message_id = $1",
        message_id,
    )


def outgoing(lease_s: float = 300.0) -> mail_once.Outgoing:
    return mail_once.Outgoing(
        columns={"source": "test", "recipient": "claire.martin@dupont-sa.fr"}, lease_s=lease_s
    )


async def test_sent_once_and_marked_sent(pool: asyncpg.Pool, stack: LocalStack) -> None:
    mail = message()
    mid = str(mail["Message-ID"])
    host, port = stack.mail.host, stack.mail.port

    assert await mail_once.send_once(pool, mail, host, port, outgoing()) is True
    assert await mail_once.send_once(pool, mail, host, port, outgoing()) is False

    assert caught(stack, mid) == 1
    sent = await row(pool, mid)
    assert (sent["state"], sent["attempts"], sent["lease_until"]) == ("sent", 1, None)
    assert sent["sent_at"] is not None


async def test_a_crash_between_smtp_and_the_mark_resends_only_after_the_lease(
    pool: asyncpg.Pool, stack: LocalStack
) -> None:
    mail = message()
    mid = str(mail["Message-ID"])
    host, port = stack.mail.host, stack.mail.port
    lease = outgoing(lease_s=2.0)

    # the first sender commits `sending`, hands the mail to SMTP, and dies before the mark
    assert await mail_once.claim(pool, mid, lease) is True
    await aiosmtplib.send(mail, hostname=host, port=port)
    assert caught(stack, mid) == 1
    assert (await row(pool, mid))["state"] == "sending"

    # a retry while the lease runs sends nothing (it waits, then gives up: retried later)
    waited = mail_once.IN_FLIGHT_WAIT_S
    mail_once.IN_FLIGHT_WAIT_S = 0.5
    try:
        with pytest.raises(mail_once.MailInFlight):
            await mail_once.send_once(pool, mail, host, port, lease)
    finally:
        mail_once.IN_FLIGHT_WAIT_S = waited
    assert caught(stack, mid) == 1

    # past the lease: sent again, with the same Message-ID, and marked sent
    await asyncio.sleep(2.1)
    assert await mail_once.send_once(pool, mail, host, port, lease) is True
    again = await row(pool, mid)
    assert (again["state"], again["attempts"]) == ("sent", 2)
    assert caught(stack, mid) == 2
    assert {m.message()["Message-ID"] for m in stack.mail.messages[-2:]} == {mid}

    # and never again
    assert await mail_once.send_once(pool, mail, host, port, lease) is False
    assert caught(stack, mid) == 2


async def test_a_refused_connection_releases_the_lease_at_once(
    pool: asyncpg.Pool, stack: LocalStack
) -> None:
    mail = message()
    mid = str(mail["Message-ID"])
    nobody = free_port()  # no SMTP server there: nobody has the mail

    with pytest.raises((aiosmtplib.SMTPConnectError, OSError)):
        await mail_once.send_once(pool, mail, "127.0.0.1", nobody, outgoing())
    assert (await row(pool, mid))["state"] == "sending"

    # the next attempt does not wait for the lease
    assert await mail_once.send_once(pool, mail, stack.mail.host, stack.mail.port, outgoing())
    assert caught(stack, mid) == 1
    assert (await row(pool, mid))["attempts"] == 2


async def test_concurrent_attempts_send_once(pool: asyncpg.Pool, stack: LocalStack) -> None:
    mail = message()
    mid = str(mail["Message-ID"])
    host, port = stack.mail.host, stack.mail.port

    sent = await asyncio.gather(
        *(mail_once.send_once(pool, mail, host, port, outgoing()) for _ in range(4))
    )

    assert sorted(sent) == [False, False, False, True]
    assert caught(stack, mid) == 1
