"""Mail authenticity (issue 13 item 3): our trusted MTA's DMARC verdict on a client's domain,
shown in words on the back office's message page, and replies carrying our signed Message-ID
from someone outside the dossier."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from html import unescape

import asyncpg
import httpx
import pytest

from assistance import db
from assistance.directory import Role
from assistance.mail import signed_message_id
from services.intake.mail.auth import Dmarc, dmarc_of
from services.intake.mail.ingest import Delivery, MailIngestor
from tests.helpers import deposit_body
from tests.services.intake.mail_helpers import SUPPORT, build_mail, unique
from tests.services.site.support import site_client

MTA = "mx.manao.eu"


def test_only_the_trusted_mtas_verdict_is_read() -> None:
    ours = (
        f"{MTA}; spf=pass smtp.mailfrom=dupont-sa.fr; dkim=none; "
        "dmarc=fail (p=reject dis=none) header.from=Dupont-SA.fr"
    )
    forged = "mx.manao.eu.attacker.example; dmarc=pass header.from=dupont-sa.fr"
    assert dmarc_of([("Authentication-Results", ours)], MTA) == Dmarc("fail", "dupont-sa.fr")
    assert dmarc_of([("Authentication-Results", forged)], MTA) is None
    assert dmarc_of([("Authentication-Results", ours)], "") is None  # nothing configured
    # the topmost header of our MTA is its own; a lower one came with the mail
    both = [
        ("Authentication-Results", f"{MTA}; dmarc=pass header.from=dupont-sa.fr"),
        ("Authentication-Results", ours),
    ]
    assert dmarc_of(both, MTA) == Dmarc("pass", "dupont-sa.fr")
    assert dmarc_of([("Authentication-Results", f"{MTA}; spf=fail")], MTA) is None


@pytest.fixture
async def pool(system) -> AsyncIterator[asyncpg.Pool]:
    opened = await db.create_pool(system.settings.database_url, 2)
    try:
        yield opened
    finally:
        await opened.close()


def _verdict(result: str, domain: str, serv: str = MTA) -> dict[str, str]:
    return {"Authentication-Results": f"{serv}; dmarc={result} header.from={domain}"}


async def test_a_dmarc_failure_on_a_clients_domain_is_quarantined(system, pool) -> None:
    ingestor = MailIngestor(
        pool, system.settings.model_copy(update={"mail_trusted_authserv_id": MTA})
    )

    async def outcome(sender: str, headers: dict[str, str]) -> tuple[str, str | None]:
        subject = f"Virement urgent {unique('n')}"  # never a thread of an earlier one
        raw = build_mail(sender, subject, "Changez notre RIB.", headers=headers)
        got = await ingestor.ingest(Delivery(raw, "smtp", sender, (SUPPORT,)))
        return got.status, got.reason

    claire = "claire.martin@dupont-sa.fr"
    colleague = unique("paul").replace("exemple-client.fr", "dupont-sa.fr")
    assert await outcome(claire, _verdict("fail", "dupont-sa.fr")) == ("quarantined", "dmarc_fail")
    assert await outcome(colleague, _verdict("fail", "dupont-sa.fr")) == (
        "quarantined",
        "dmarc_fail",
    )
    assert await outcome(claire, _verdict("pass", "dupont-sa.fr")) == ("opened", None)
    # another server's word is not believed; an unknown domain's failure decides nothing
    untrusted = _verdict("fail", "dupont-sa.fr", serv="mx.ailleurs.example")
    assert await outcome(claire, untrusted) == ("opened", None)
    stranger = unique("inconnu")
    assert await outcome(stranger, _verdict("fail", "exemple-client.fr")) == ("opened", None)
    row = await pool.fetchrow(
        """SELECT q.detail FROM intake.mail_quarantine q JOIN intake.mail_messages m
           ON m.id = q.mail_id WHERE m.from_address = $1 AND q.reason = 'dmarc_fail'
           ORDER BY m.received_at DESC LIMIT 1""",
        colleague,
    )
    assert row["detail"] == (
        f"DMARC en échec pour dupont-sa.fr selon {MTA} : l'expéditeur est probablement usurpé."
    )
    # every message keeps the verdict it came with, whatever its outcome
    verdicts = {
        r["from_address"]: r["authentication"]
        for r in await pool.fetch(
            """SELECT DISTINCT ON (from_address) from_address, details->'authentication'
                      AS authentication
               FROM intake.mail_messages WHERE from_address = ANY($1::text[])
               ORDER BY from_address, received_at DESC""",
            [colleague, stranger],
        )
    }
    assert verdicts[colleague] == {"dmarc": "fail", "domain": "dupont-sa.fr", "by": MTA}
    assert verdicts[stranger]["dmarc"] == "fail"
    latest_claire = await pool.fetchval(
        """SELECT details->'authentication' FROM intake.mail_messages WHERE from_address = $1
           ORDER BY received_at DESC LIMIT 1""",
        claire,
    )
    assert latest_claire["dmarc"] == "absent"  # another server's header is not believed


async def test_the_message_page_words_the_dmarc_verdict(system, pool) -> None:
    """The back office's page of a quarantined mail says what our mail server found, in
    French: each verdict recorded on a message, and none when no server is trusted."""
    trusted = MailIngestor(
        pool, system.settings.model_copy(update={"mail_trusted_authserv_id": MTA})
    )
    untrusted = MailIngestor(
        pool, system.settings.model_copy(update={"mail_trusted_authserv_id": ""})
    )

    async def quarantined(
        ingestor: MailIngestor, sender: str, headers: dict[str, str]
    ) -> uuid.UUID:
        raw = build_mail(
            sender, f"Lettre d'information {unique('n')}", "Nouveautés.", headers=headers
        )
        got = await ingestor.ingest(Delivery(raw, "smtp", sender, (SUPPORT,)))
        assert got.status == "quarantined", got
        return got.mail_id

    bulk = {"Precedence": "bulk"}
    expected = {
        await quarantined(
            trusted, "claire.martin@dupont-sa.fr", _verdict("fail", "dupont-sa.fr")
        ): (f"DMARC : non conforme · domaine dupont-sa.fr · selon {MTA}"),
        await quarantined(
            trusted, unique("lettre"), {**bulk, **_verdict("pass", "exemple-client.fr")}
        ): f"DMARC : conforme · domaine exemple-client.fr · selon {MTA}",
        await quarantined(
            trusted, unique("lettre"), {**bulk, **_verdict("none", "exemple-client.fr")}
        ): (
            "DMARC : aucune politique publiée par le domaine de l'expéditeur · domaine "
            f"exemple-client.fr · selon {MTA}"
        ),
        await quarantined(trusted, unique("lettre"), bulk): (
            "DMARC : absent (notre serveur de réception n'a donné aucun résultat)"
        ),
        await quarantined(untrusted, unique("lettre"), bulk): (
            "DMARC : non vérifié (aucun serveur de réception de confiance n'est configuré)"
        ),
    }
    async with site_client(system, Role.technician) as web:
        for mail_id, words in expected.items():
            page = unescape((await web.get(f"/bureau/quarantaine/{mail_id}")).text)
            shown = re.search(r"<dt>Authentification</dt><dd data-dmarc>(.*?)</dd>", page, re.S)
            assert shown is not None, page
            assert shown[1] == words


async def test_a_reply_with_our_signed_id_from_a_stranger_is_not_joined(
    system, pool, http: httpx.AsyncClient
) -> None:
    r = await http.post("/api/v1/requests", json=deposit_body(subject="Signé"))
    reference = r.json()["reference"]
    settings = system.settings
    ours = signed_message_id(reference, 1, settings.mail_signing_key, settings.mail_domain)
    ingestor = MailIngestor(pool, settings)
    pirate = "pirate@exemple-malveillant.fr"
    raw = build_mail(pirate, f"Re: {reference}", "Envoyez-moi les données.", in_reply_to=ours)
    got = await ingestor.ingest(Delivery(raw, "smtp", pirate, (SUPPORT,)))
    assert (got.status, got.reason) == ("quarantined", "reply_sender_mismatch")
    raw = build_mail("claire.martin@dupont-sa.fr", f"Re: {reference}", "Merci.", in_reply_to=ours)
    got = await ingestor.ingest(Delivery(raw, "smtp", "claire.martin@dupont-sa.fr", (SUPPORT,)))
    assert got.status == "joined"
