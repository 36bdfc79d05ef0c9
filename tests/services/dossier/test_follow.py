"""Follow without an account (issue 14, decision 0019): the acknowledgement carries a personal
link to the dossier; « Suivre mes dossiers » mails such links to any address that has dossiers
and answers the same for any address; links are scoped, revocable, and end with the reopen
window."""

from __future__ import annotations

import re
import uuid
from html import unescape
from typing import Any

import asyncpg
import httpx
import pytest

from assistance import db, follow
from assistance.directory import Role
from deploy.local.stack import LocalStack
from tests.helpers import auth, deposit_body, eventually
from tests.services.site.support import csrf_of

LINK = re.compile(r"(http://\S+/suivi/(\S+))")
KEY = "test-signing-key"


def test_a_token_is_scoped_to_its_dossier_and_address() -> None:
    dossier = uuid.UUID("787cc230-12c0-49d1-af50-9008fe67a280")
    token = follow.sign(dossier, "Paul@Exemple.fr", KEY, issued=1_764_633_600_000)
    parsed = follow.parse(token)

    assert token.startswith("787cc23012c049d1af509008fe67a280.19adc5be000.")
    assert parsed is not None and (parsed.dossier_id, parsed.issued) == (dossier, 1_764_633_600_000)
    assert follow.signed_for(parsed, "paul@exemple.fr", KEY) is True
    assert follow.signed_for(parsed, "autre@exemple.fr", KEY) is False
    assert follow.signed_for(parsed, "paul@exemple.fr", "another-key") is False
    other = follow.parse(token.replace("787cc230", "787cc231", 1))
    assert other is not None and follow.signed_for(other, "paul@exemple.fr", KEY) is False
    assert follow.parse("../../etc/passwd") is None


@pytest.fixture
async def pool(system: Any) -> Any:
    pool = await db.create_pool(system.settings.database_url, 2)
    try:
        yield pool
    finally:
        await pool.close()


async def _link_in_mail(stack: LocalStack, address: str, subject_part: str) -> tuple[str, str]:
    mail = await stack.mail.wait_for(
        lambda m: address in m.rcpt_tos and subject_part in str(m.message()["Subject"]),
        timeout=30,
    )
    body = mail.message().get_body(("plain",))
    assert body is not None
    found = LINK.search(body.get_content())
    assert found, body.get_content()
    return found.group(1), found.group(2)


async def test_a_requester_without_an_account_follows_the_dossier(
    system: Any, stack: LocalStack, http: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    address = f"paul-{uuid.uuid4().hex[:8]}@exemple-client.fr"
    body = deposit_body(subject="Relevé bancaire illisible")
    body["requester"] = {"email": address, "name": "Paul Durand"}
    deposit = (await http.post("/api/v1/requests", json=body)).json()
    link, token = await _link_in_mail(stack, address, deposit["reference"])

    async with httpx.AsyncClient(timeout=30, headers={"Accept": "text/html"}) as web:
        page = await web.get(link)
    assert page.status_code == 200
    text = unescape(page.text)
    assert f"{deposit['reference']}</span> Relevé bancaire illisible" in text
    assert "Vous suivez ce dossier par votre lien personnel" in text
    assert "Demande reçue" in text  # its history, as the customer sees it
    api = await http.get(f"/api/v1/follow/{token}")
    assert (api.status_code, api.json()["reference"]) == (200, deposit["reference"])
    assert api.json()["details"] == {}  # the customer's view, never the staff's

    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    refused = await http.get(f"/api/v1/follow/{forged}")
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "follow_link_invalid")

    # a technician revokes the links sent so far; « Suivre mes dossiers » sends a new one
    tech = auth(system.tokens[Role.technician])
    revoked = await http.post(f"/api/v1/dossiers/{deposit['id']}/follow-links/revoke", headers=tech)
    assert revoked.status_code == 200, revoked.text
    assert (await http.get(f"/api/v1/follow/{token}")).status_code == 404
    async with httpx.AsyncClient(base_url=system.base_url, timeout=30) as web:
        csrf = csrf_of((await web.get("/connexion")).text)
        asked = await web.post("/connexion/lien", data={"csrf": csrf, "email": address})
        told = unescape((await web.get("/connexion")).text)
        nobody = f"personne-{uuid.uuid4().hex[:8]}@exemple-client.fr"
        csrf = csrf_of(told)
        await web.post("/connexion/lien", data={"csrf": csrf, "email": nobody})
        told_nobody = unescape((await web.get("/connexion")).text)
    assert asked.status_code == 303
    same = "Si cette adresse a un compte ou des dossiers, un lien vient de lui être envoyé."
    assert same in told and same in told_nobody
    new_link, new_token = await _link_in_mail(stack, address, "liens de suivi")
    assert new_token != token
    assert (await http.get(f"/api/v1/follow/{new_token}")).status_code == 200
    assert [m for m in stack.mail.messages if nobody in m.rcpt_tos] == []

    # the link ends with the reopen window after closure (the dossier aged in the read model)
    window = system.settings.reopen_window_days

    async def projected() -> bool:
        got = await http.get(f"/api/v1/dossiers/{deposit['id']}", headers=tech)
        return any(e["kind"] == "opened" for e in got.json()["timeline"])

    await eventually(projected, timeout=15)
    aged = await pool.execute(
        "UPDATE dossier.dossiers SET closed_at = now() - make_interval(days => $2 + 1) "
        "WHERE id = $1",
        uuid.UUID(deposit["id"]),
        window,
    )
    assert aged == "UPDATE 1"
    assert (await http.get(f"/api/v1/follow/{new_token}")).status_code == 404
    async with httpx.AsyncClient(timeout=30, headers={"Accept": "text/html"}) as web:
        expired = await web.get(new_link)
    assert expired.status_code == 404
    assert "Ce lien de suivi n'est plus valable (expiré ou révoqué)." in unescape(expired.text)


async def test_asking_for_links_is_limited_per_client_address(
    http: httpx.AsyncClient, pool: asyncpg.Pool, stack: LocalStack
) -> None:
    """Issue 13: one client address asks at most 20 times an hour (each ask may mail someone);
    then a 429 in French with `Retry-After`. The site's own calls are limited by the site."""
    key = "follow:client:127.0.0.1"
    await pool.execute("DELETE FROM web.attempts WHERE key = $1", key)
    try:
        answers = [
            (
                await http.post(
                    "/api/v1/follow-links", json={"email": f"a{i}-{uuid.uuid4().hex[:6]}@x.fr"}
                )
            ).status_code
            for i in range(21)
        ]
        assert answers == [202] * 20 + [429]
        refused = await http.post("/api/v1/follow-links", json={"email": "b@x.fr"})
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 3600
        assert refused.json()["error"]["message"].startswith("Trop de demandes de liens de suivi")
        # a visitor of the site is not refused because of the API's other callers
        async with httpx.AsyncClient(base_url=str(http.base_url), timeout=30) as web:
            csrf = csrf_of((await web.get("/connexion")).text)
            asked = await web.post(
                "/connexion/lien", data={"csrf": csrf, "email": f"c-{uuid.uuid4().hex[:6]}@x.fr"}
            )
        assert asked.status_code == 303
    finally:
        await pool.execute("DELETE FROM web.attempts WHERE key = $1", key)
