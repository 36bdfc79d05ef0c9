"""Mail over real SMTP (R1): the receiver the system starts, smtplib over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from assistance import db
from assistance.directory import Role
from tests.services.intake.mail_helpers import (
    build_mail,
    delta,
    dossier,
    ledger,
    mail_by_message_id,
    send,
    unique,
)


@pytest.fixture
async def pool(system) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(system.settings.database_url, 2)
    try:
        yield pool
    finally:
        await pool.close()


async def test_a_new_mail_opens_a_dossier(http: httpx.AsyncClient, system, pool) -> None:
    tech = system.tokens[Role.technician]
    before = await ledger(http, tech)
    sender = unique()
    raw = build_mail(sender, "Export FEC impossible")
    refused = await send(system.settings.mail_listen_port, raw, sender)
    assert refused == {}
    stored = await mail_by_message_id(pool, _mid(raw))
    assert stored["outcome"] == "opened"
    d = await dossier(http, system.tokens, str(stored["dossier_id"]))
    assert d["channel"] == "mail"
    assert d["subject"] == "Export FEC impossible"
    assert delta(before, await ledger(http, tech)) == {"received": 1, "opened": 1}


def _mid(raw: bytes) -> str:
    import email
    from email.policy import default

    return str(email.message_from_bytes(raw, policy=default)["Message-ID"])
