"""Site sessions held server-side (issue 13): the cookie holds no token, sign-out and expiry
make a copied cookie useless, and every sign-in path is rate-limited."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
import zlib

import httpx

from assistance import db, directory
from assistance.directory import Role
from tests.helpers import auth
from tests.services.site.support import EMAIL_OF, csrf_of

COOKIE = "manao_session"


def _payload(cookie: str) -> dict:
    """What anyone holding the cookie reads in it (itsdangerous signs, it does not encrypt)."""
    compressed = cookie.startswith(".")  # itsdangerous marks a compressed payload so
    body = cookie.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return json.loads(zlib.decompress(raw) if compressed else raw)


async def _signed_in(system, web: httpx.AsyncClient, role: Role) -> str:
    csrf = csrf_of((await web.get("/connexion")).text)
    r = await web.post(
        "/connexion",
        data={"csrf": csrf, "email": EMAIL_OF[role], "token": system.tokens[role]},
    )
    assert r.status_code == 303, r.text
    return web.cookies[COOKIE]


async def test_the_cookie_holds_no_token_and_dies_with_sign_out_and_expiry(system) -> None:
    base = system.base_url
    async with (
        httpx.AsyncClient(base_url=base, timeout=20) as web,
        httpx.AsyncClient(base_url=base, timeout=20) as thief,
    ):
        cookie = await _signed_in(system, web, Role.customer)
        raw = web.cookies.get(COOKIE)
        assert system.tokens[Role.customer] not in raw
        payload = _payload(cookie.strip('"'))
        assert set(payload) == {"c", "s", "l", "f"}
        assert "mna_" not in json.dumps(payload) and "mns_" not in json.dumps(payload)

        thief.cookies.set(COOKIE, raw)
        assert (await thief.get("/espace")).status_code == 200  # a copy works while signed in
        portal = await web.get("/espace")
        out = await web.post("/deconnexion", data={"csrf": csrf_of(portal.text)})
        assert out.status_code == 303
        stolen = await thief.get("/espace", follow_redirects=False)
        assert stolen.status_code == 303 and stolen.headers["location"].startswith("/connexion")

        # expiry: the session and its API token stop at the same time (this session only:
        # other tests' sessions of the same customer live in the shared system)
        cookie = await _signed_in(system, web, Role.customer)
        session_hash = hashlib.sha256(_payload(cookie.strip('"'))["s"].encode()).digest()
        thief.cookies.clear()
        thief.cookies.set(COOKIE, web.cookies[COOKIE])
        pool = await db.create_pool(system.settings.database_url, 1)
        try:
            await pool.execute(
                "UPDATE site.sessions SET expires_at = now() - interval '1 second' "
                "WHERE id_hash = $1",
                session_hash,
            )
            expired = await thief.get("/espace", follow_redirects=False)
            assert expired.status_code == 303
            live = await pool.fetchval(
                "SELECT count(*) FROM directory.tokens t JOIN site.sessions s "
                "ON s.token_hash = t.token_hash WHERE t.revoked_at IS NULL AND s.id_hash = $1",
                session_hash,
            )
            assert live == 0
        finally:
            await pool.close()


async def test_sign_in_is_rate_limited_per_address_with_a_french_429(system) -> None:
    email = "tentatives@exemple.fr"
    pool = await db.create_pool(system.settings.database_url, 1)
    try:
        async with httpx.AsyncClient(base_url=system.base_url, timeout=20) as web:
            csrf = csrf_of((await web.get("/connexion")).text)
            answers = []
            for _ in range(6):
                r = await web.post(
                    "/connexion", data={"csrf": csrf, "email": email, "token": "mna_devine"}
                )
                answers.append(r.status_code)
            assert answers == [400, 400, 400, 400, 400, 429]
            assert 0 < int(r.headers["retry-after"]) <= 15 * 60
            assert "Trop de tentatives de connexion" in r.text
            # the mail link path shares the limit
            link = await web.post("/connexion/lien", data={"csrf": csrf, "email": email})
            assert link.status_code == 429 and "retry-after" in link.headers
    finally:
        await pool.execute(
            "DELETE FROM web.attempts WHERE key IN ($1, 'client:127.0.0.1')",
            f"email:{email}",
        )
        await pool.close()


async def test_a_user_sees_and_closes_sessions_and_an_admin_revokes_all(system) -> None:
    base = system.base_url
    pool = await db.create_pool(system.settings.database_url, 1)
    try:  # a user of their own: revoking the demo trainer would sign other tests out
        email = f"formateur-{uuid.uuid4().hex[:8]}@manao.eu"
        user_id = await directory.create_user(pool, email, "Fabrice Formateur", Role.trainer)
        token = await directory.issue_token(pool, user_id, "test")
    finally:
        await pool.close()

    async def sign_in(web: httpx.AsyncClient) -> None:
        csrf = csrf_of((await web.get("/connexion")).text)
        r = await web.post("/connexion", data={"csrf": csrf, "email": email, "token": token})
        assert r.status_code == 303, r.text

    async with (
        httpx.AsyncClient(base_url=base, timeout=20) as laptop,
        httpx.AsyncClient(base_url=base, timeout=20) as phone,
    ):
        await sign_in(laptop)
        await sign_in(phone)
        listed = await laptop.get("/compte/sessions")
        assert listed.status_code == 200 and "Mes sessions" in listed.text
        keys = re.findall(r"/compte/sessions/([0-9a-f]{64})/revoquer", listed.text)
        assert len(keys) == 2
        current = re.search(
            r"/compte/sessions/([0-9a-f]{64})/revoquer[^<]*<[^>]*>\s*<[^>]*>Fermer \(celle-ci\)",
            listed.text,
        )
        assert current, listed.text
        other = next(k for k in keys if k != current[1])
        closed = await laptop.post(
            f"/compte/sessions/{other}/revoquer", data={"csrf": csrf_of(listed.text)}
        )
        assert closed.status_code == 303
        assert (await phone.get("/compte/sessions")).status_code == 303  # signed out
        assert (await laptop.get("/compte/sessions")).status_code == 200

        # an administrator revokes every session and token of the user (API; CLI alike)
        admin = {"Authorization": f"Bearer {system.tokens[Role.admin]}"}
        path = f"/api/v1/operations/users/{user_id}/revoke-access"
        assert (await laptop.post(path, headers=auth(token))).status_code == 403
        r = await laptop.post(path, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json() == {"user_id": str(user_id), "tokens_revoked": 2}
        assert (await laptop.get("/compte/sessions")).status_code == 303
        assert (await laptop.get("/api/v1/queue", headers=auth(token))).status_code == 401
        unknown = await laptop.post(
            f"/api/v1/operations/users/{uuid.uuid4()}/revoke-access", headers=admin
        )
        assert unknown.status_code == 404
