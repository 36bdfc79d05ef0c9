"""Sign-in by mail: a single-use link to a known address, its own token, revoked at sign-out."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.policy import default as default_policy

import httpx

from assistance import directory
from assistance.db import create_pool
from deploy.local.stack import LocalStack
from tests.services.site.support import csrf_of

LINK = re.compile(r"(http://\S+/connexion/lien/\S+)")


async def test_a_customer_signs_in_with_a_link_sent_by_mail(system, stack: LocalStack) -> None:
    async with httpx.AsyncClient(base_url=system.base_url, timeout=20) as web:
        stack.mail.clear()
        token = csrf_of((await web.get("/connexion")).text)
        for email in ("claire.martin@dupont-sa.fr", "personne@inconnu.example"):
            asked = await web.post("/connexion/lien", data={"csrf": token, "email": email})
            assert asked.status_code == 303
            page = await web.get("/connexion")
            assert (
                "Si cette adresse a un compte ou des dossiers, un lien vient de lui être envoyé."
                in page.text
            )
        caught = await stack.mail.wait_for(
            lambda m: "claire.martin@dupont-sa.fr" in m.rcpt_tos, timeout=10
        )
        assert all("personne@inconnu.example" not in m.rcpt_tos for m in stack.mail.messages)
        msg = message_from_bytes(caught.data, policy=default_policy)
        assert msg["Auto-Submitted"] == "auto-generated"
        link = LINK.search(msg.get_body(preferencelist=("plain",)).get_content())
        assert link, "no link in the mail"
        url = link.group(1).removeprefix(system.base_url)

        followed = await web.get(url)
        assert (followed.status_code, followed.headers["location"]) == (303, "/espace")
        portal = await web.get("/espace")
        assert portal.status_code == 200 and "Claire Martin" in portal.text

        # single use
        async with httpx.AsyncClient(base_url=system.base_url, timeout=20) as other:
            again = await other.get(url)
            assert again.headers["location"] == "/connexion"
            assert "invalide, déjà utilisé ou expiré" in (await other.get("/connexion")).text

        # signing out revokes the session and the token made for it (other tests' sessions of
        # the same customer may be live: this one is found by the link's sign-in time)
        pool = await create_pool(system.settings.database_url, 1)
        try:
            mine = await pool.fetchrow(
                "SELECT s.token_hash FROM site.sessions s JOIN directory.users u"
                " ON u.id = s.user_id WHERE u.email = 'claire.martin@dupont-sa.fr'"
                " AND s.revoked_at IS NULL ORDER BY s.created_at DESC LIMIT 1"
            )
            live = "SELECT revoked_at IS NULL FROM directory.tokens WHERE token_hash = $1"
            assert await pool.fetchval(live, mine["token_hash"]) is True
            out = await web.post("/deconnexion", data={"csrf": csrf_of(portal.text)})
            assert out.status_code == 303
            assert await pool.fetchval(live, mine["token_hash"]) is False
            assert (await web.get("/espace", follow_redirects=False)).status_code == 303
            assert await directory.principal_by_email(pool, "CLAIRE.MARTIN@dupont-sa.fr")
        finally:
            await pool.close()
