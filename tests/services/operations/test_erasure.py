"""RGPD erasure (issue 13 item 5, decision 0024), over the real stack: an administrator erases
a customer; their name, address and words leave the API answers, the site's pages, the stored
mails, the outbox and the NATS streams, their closed dossiers' Temporal histories are deleted,
and the statistics still count their dossiers. An open dossier refuses the erasure (409, in
French); nobody but an administrator may erase."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.service import RPCError, RPCStatusCode

from assistance import db, directory
from assistance import temporal as temporal_client
from assistance.bus import Bus
from assistance.directory import Role
from composition.parts import PERSONAL_DATA
from services.operations import erasure
from tests.helpers import auth, eventually
from tests.services.intake.mail_helpers import build_mail, send
from tests.services.site.support import site_client

ERASE = "/api/v1/operations/personal-data/erase"


@pytest.fixture(scope="module")
async def pool(system: Any) -> AsyncIterator[asyncpg.Pool]:
    opened = await db.create_pool(system.settings.database_url, 2)
    try:
        yield opened
    finally:
        await opened.close()


async def a_customer(pool: asyncpg.Pool) -> tuple[str, str, str, str]:
    """A fresh customer of a fresh organisation: (address, name, token, unique word)."""
    word = f"zorglub{uuid.uuid4().hex[:10]}"
    domain = f"eff-{uuid.uuid4().hex[:8]}.example"
    org = await directory.create_organisation(pool, f"Effacement {uuid.uuid4().hex[:6]}", [domain])
    email, name = f"zoe.{word}@{domain}", f"Zoé {word.capitalize()}"
    user = await directory.create_user(pool, email, name, Role.customer, org)
    return email, name, await directory.issue_token(pool, user, "test"), word


async def history_gone(temporal: Any, dossier_id: str) -> bool:
    """`describe` and `fetch_history` answer NOT_FOUND (Temporal deletes asynchronously)."""
    handle = temporal.get_workflow_handle(dossier_id)
    for ask in (handle.describe, handle.fetch_history):
        try:
            await ask()
            return False
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
    return True


async def closed(http: httpx.AsyncClient, tech: dict[str, str], dossier_id: str) -> None:
    base = f"/api/v1/dossiers/{dossier_id}"

    async def step(path: str, **kw: Any) -> bool:
        r = await http.post(f"{base}/{path}", headers=tech, **kw)
        return r.status_code in (200, 409)

    await eventually(lambda: step("take"), timeout=60)
    diagnosis = {"kind": "usage", "context": "Cabinet", "need": "Exporter"}
    assert await step("diagnosis", json=diagnosis)
    assert await step("close", json={"resolution": "Réglé."})

    async def is_closed() -> bool:
        r = await http.get(base, headers=tech)
        return r.status_code == 200 and r.json()["status"] == "closed"

    await eventually(is_closed, timeout=60)


async def test_an_admin_erases_a_customer_everywhere(
    http: httpx.AsyncClient, system: Any, pool: asyncpg.Pool
) -> None:
    admin, tech = auth(system.tokens[Role.admin]), auth(system.tokens[Role.technician])
    email, name, token, word = await a_customer(pool)
    deposited = await http.post(
        "/api/v1/requests",
        headers=auth(token),
        json={
            "requester": {"email": email, "name": name},
            "software": "manao-compta",
            "subject": f"Sujet {word}",
            "description": f"Mon texte secret {word}, appelez-moi au 06 12 34 56 78.",
        },
    )
    assert deposited.status_code == 201, deposited.text
    web_id = deposited.json()["id"]
    raw = build_mail(
        email,
        subject=f"Courriel {word}",
        text=f"Bonjour, c'est {name}.",
        name=name,
        attachments=[(f"capture-{word}.txt", "text/plain", f"pièce {word}".encode())],
    )
    await send(system.settings.mail_listen_port, raw, mail_from=email)

    async def mail_dossier() -> asyncpg.Record | None:
        return await pool.fetchrow(
            """SELECT id, dossier_id, reference FROM intake.mail_messages
               WHERE lower(from_address) = $1 AND dossier_id IS NOT NULL""",
            email,
        )

    mail = await eventually(mail_dossier, timeout=60)
    mail_id, mail_dossier_id = str(mail["id"]), str(mail["dossier_id"])

    # open: refused, in French, naming the open dossiers
    refused = await http.post(ERASE, headers=admin, json={"email": email})
    assert refused.status_code == 409, refused.text
    message = refused.json()["error"]["message"]
    assert "dossiers en cours" in message and mail["reference"] in message
    for role in (Role.technician, Role.customer, Role.product_manager):
        r = await http.post(ERASE, headers=auth(system.tokens[role]), json={"email": email})
        assert r.status_code == 403

    for dossier_id in (web_id, mail_dossier_id):
        await closed(http, tech, dossier_id)
    # found by their words before the erasure (the subject's word and the resolution's)
    before = await http.get("/api/v1/dossiers", headers=admin, params={"q": f"{word} réglé"})
    assert {item["id"] for item in before.json()["items"]} == {web_id, mail_dossier_id}
    activity_before = (await http.get("/api/v1/reports/activity", headers=admin)).json()
    temporal = await temporal_client.connect(system.settings.temporal_address)
    await temporal.get_workflow_handle(web_id).describe()  # the history is there before

    done = await http.post(
        ERASE, headers={**admin, "Idempotency-Key": f"erase-{word}"}, json={"email": email}
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["dossiers"] == 2
    assert body["erased"]["user"] == 1 and body["erased"]["mails_received"] == 1
    assert body["erased"]["mail_attachments"] >= 1 and body["erased"]["tokens"] == 1
    assert body["workflows_deleted"] >= 2 and body["pending"] == []
    assert body["stream_messages_deleted"] > 0
    assert email not in done.text and word not in done.text

    # the API's answers
    secrets = (email, name, word)
    for dossier_id in (web_id, mail_dossier_id):
        r = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=tech)
        assert r.status_code == 200
        assert not any(s.lower() in r.text.lower() for s in secrets), r.text
        assert r.json()["status"] == "closed"
        assert r.json()["requester"]["name"].startswith("Personne effacée le ")
    found = await http.get(f"/api/v1/dossiers?q={word}", headers=admin)
    assert found.json()["total"] == 0
    in_documents = await pool.fetchval(
        """SELECT count(*) FROM dossier.search_documents
           WHERE staff @@ websearch_to_tsquery('dossier.fr', $1)""",
        word,
    )
    assert in_documents == 0
    shown = await http.get(f"/api/v1/mail/messages/{mail_id}", headers=tech)
    assert shown.status_code == 200
    assert not any(s.lower() in shown.text.lower() for s in secrets), shown.text
    # the customer's token is dead
    assert (await http.get("/api/v1/dossiers", headers=auth(token))).status_code == 401

    # the site's back office page of the dossier
    async with site_client(system, Role.technician) as web:
        page = await web.get(f"/bureau/dossiers/{web_id}")
        assert page.status_code == 200
        assert "Personne effacée le" in page.text
        assert not any(s.lower() in page.text.lower() for s in secrets)

    # the stored bytes: raw mails, attachments, our mails in the outbox, the directory
    rows = await pool.fetch(
        """SELECT raw, text_body FROM intake.mail_messages WHERE id = $1""", uuid.UUID(mail_id)
    )
    assert all(word.encode() not in bytes(r["raw"]) for r in rows)
    assert (
        await pool.fetchval(
            """SELECT count(*) FROM intake.mail_attachments a WHERE mail_id = $1
           AND (content IS NOT NULL OR strpos(filename, $2) > 0)""",
            uuid.UUID(mail_id),
            word,
        )
        == 0
    )
    for table, column in (
        ("bus.outbox", "payload::text"),
        ("dossier.outbound_mail", "recipient || subject"),
        ("intake.requests", "requester_email || requester_name || subject || description"),
        ("dossier.timeline", "text || coalesce(author, '') || data::text"),
        ("directory.users", "email || name"),
        ("audit.events", "actor_email || target || details::text"),
    ):
        n = await pool.fetchval(
            f"SELECT count(*) FROM {table} WHERE strpos(lower({column}), $1) > 0",  # noqa: S608
            word,
        )
        assert n == 0, table
    # the streams
    bus = Bus(system.settings.nats_url, name="test-erasure")
    await bus.connect()
    try:
        assert await erasure.purge_streams(bus, [word, email]) == 0
    finally:
        await bus.close()

    # Temporal: the closed dossiers' histories are gone
    for dossier_id in (web_id, mail_dossier_id):
        await eventually(lambda d=dossier_id: history_gone(temporal, d), timeout=60)

    # the statistics still count the dossiers
    activity_after = (await http.get("/api/v1/reports/activity", headers=admin)).json()
    for key in ("weeks", "softwares", "channels", "kinds"):
        assert activity_after[key] == activity_before[key], key

    # again: a no-op answering zeros; the audit keeps only the address's hash
    again = await http.post(ERASE, headers=admin, json={"email": email.upper()})
    assert again.status_code == 200
    assert set(again.json()["erased"].values()) == {0}
    assert again.json()["workflows_deleted"] == 0 == again.json()["stream_messages_deleted"]
    trail = await http.get(
        f"/api/v1/operations/audit?action=personal_data.erased&target=sha256:{body['email_sha256']}",
        headers=admin,
    )
    assert len(trail.json()) == 2 and email not in trail.text


async def test_force_erases_an_open_dossier_and_records_it(
    http: httpx.AsyncClient, system: Any, pool: asyncpg.Pool
) -> None:
    admin = auth(system.tokens[Role.admin])
    email, name, token, word = await a_customer(pool)
    r = await http.post(
        "/api/v1/requests",
        headers=auth(token),
        json={
            "requester": {"email": email, "name": name},
            "software": "manao-compta",
            "subject": f"Sujet {word}",
            "description": "Texte.",
        },
    )
    assert r.status_code == 201
    reference, dossier_id = r.json()["reference"], r.json()["id"]

    async def projected() -> bool:
        got = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=admin)
        return got.status_code == 200

    await eventually(projected, timeout=60)
    forced = await http.post(ERASE, headers=admin, json={"email": email, "force": True})
    assert forced.status_code == 200, forced.text
    assert forced.json()["forced_open"] == [reference]
    assert forced.json()["workflows_deleted"] == 0  # an open dossier's workflow runs on
    trail = await http.get(
        f"/api/v1/operations/audit?action=personal_data.erased"
        f"&target=sha256:{forced.json()['email_sha256']}",
        headers=admin,
    )
    assert trail.json()[0]["details"]["force"] is True
    assert trail.json()[0]["details"]["forced_open"] == [reference]

    # what the projection writes later for the erased dossier (an event still in flight, a step
    # of the dossier that goes on) gets the tombstone too
    await pool.execute(
        """INSERT INTO dossier.timeline (event_id, dossier_id, at, kind, visibility, author,
               text, data, seq)
           VALUES ($1, $2, now(), 'received', 'customer', $3, $4, $5, 0)""",
        f"late-{word}",
        uuid.UUID(dossier_id),
        name,
        f"Bonjour, c'est {name} ({email}).",
        {"subject": f"Sujet {word}"},
    )
    await pool.execute(
        "UPDATE dossier.dossiers SET requester_name = $2, subject = $3 WHERE id = $1",
        uuid.UUID(dossier_id),
        name,
        f"Sujet {word}",
    )
    shown = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=admin)
    assert not any(s.lower() in shown.text.lower() for s in (email, name, word)), shown.text


async def test_the_erasure_and_the_projection_word_the_tombstone_alike(pool: asyncpg.Pool) -> None:
    """One wording (SQL `audit.tombstone`): the text an erasure writes and the text the
    projection's triggers write later for the erased dossier, for the erasure's moment (its
    Paris date, whatever the database's clock says). Written and rolled back."""
    expected = {
        datetime(2026, 3, 28, 23, 30, tzinfo=UTC): "Personne effacée le 29/03/2026",  # CET
        datetime(2026, 10, 24, 22, 30, tzinfo=UTC): "Personne effacée le 25/10/2026",  # CEST
        datetime(2026, 7, 14, 21, 59, tzinfo=UTC): "Personne effacée le 14/07/2026",
    }
    async with pool.acquire() as conn:
        for at, words in expected.items():
            assert await erasure.tombstone(conn, at) == words
        at = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
        dossier = uuid.uuid4()
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(
                """INSERT INTO dossier.dossiers (id, reference, status, channel, software,
                       subject, requester_email, requester_name, received_at,
                       first_response_due)
                   VALUES ($1, $2, 'closed', 'web', 'manao-compta', 'Sujet', 'zoe@x.fr', 'Zoé',
                           now(), now())""",
                dossier,
                f"T-{dossier.hex[:10]}",
            )
            await erasure.erase_dossiers(conn, [dossier], PERSONAL_DATA, at)
            erased = await conn.fetchrow(
                "SELECT requester_name, subject FROM dossier.dossiers WHERE id = $1", dossier
            )
            assert tuple(erased) == (expected[at], expected[at])
            # later, the projection: an entry still in flight, a step's fields
            await conn.execute(
                """INSERT INTO dossier.timeline (event_id, dossier_id, at, kind, visibility,
                       author, text, seq) VALUES ($1, $2, now(), 'customer_message', 'customer',
                       'Zoé', 'Bonjour, ici Zoé.', 1)""",
                f"late-{dossier}",
                dossier,
            )
            await conn.execute(
                "UPDATE dossier.dossiers SET requester_name = 'Zoé', subject = 'Sujet' "
                "WHERE id = $1",
                dossier,
            )
            late = await conn.fetchrow(
                "SELECT author, text FROM dossier.timeline WHERE event_id = $1", f"late-{dossier}"
            )
            assert tuple(late) == (expected[at], expected[at])
            again = await conn.fetchrow(
                "SELECT requester_name, subject FROM dossier.dossiers WHERE id = $1", dossier
            )
            assert tuple(again) == (expected[at], expected[at])
        finally:
            await tx.rollback()


async def test_erasing_a_technician_who_left_takes_their_name_out_of_the_timelines(
    http: httpx.AsyncClient, system: Any, pool: asyncpg.Pool
) -> None:
    """A staff member erased: their name as author, in the entries' texts and as a dossier's
    technician becomes the tombstone, and stays so in what is projected afterwards; a customer
    who bears the same name keeps theirs."""
    admin = auth(system.tokens[Role.admin])
    tag = uuid.uuid4().hex[:8]
    name, email = f"Léon Partant{tag}", f"leon.{tag}@manao.example"
    user = await directory.create_user(pool, email, name, Role.technician)
    leon = auth(await directory.issue_token(pool, user, "test"))

    async def deposited(**requester: str) -> str:
        body: dict[str, Any] = {
            "software": "manao-compta",
            "subject": f"Relevé {tag}",
            "description": "Le relevé ne s'importe pas.",
            "requester": requester or {"email": "claire.martin@dupont-sa.fr", "name": "Claire"},
        }
        r = await http.post("/api/v1/requests", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def timeline(dossier_id: str, *kinds: str) -> dict[str, Any]:
        async def shown() -> dict[str, Any] | None:
            got = (await http.get(f"/api/v1/dossiers/{dossier_id}", headers=admin)).json()
            present = {e["kind"] for e in got.get("timeline", [])}
            return got if set(kinds) <= present else None

        return await eventually(shown, timeout=60)

    answered, held = await deposited(), await deposited()
    homonym = await deposited(email="claire.martin@dupont-sa.fr", name=name)
    for dossier_id in (answered, held, homonym):
        await timeline(dossier_id, "opened")

        async def taken(d: str = dossier_id) -> bool:
            r = await http.post(f"/api/v1/dossiers/{d}/take", headers=leon)
            return r.status_code == 200

        await eventually(taken, timeout=60)
    for dossier_id in (answered, homonym):
        r = await http.post(
            f"/api/v1/dossiers/{dossier_id}/responses",
            headers=leon,
            json={"text": f"Bonjour, ici {name} : réimportez le relevé."},
        )
        assert r.status_code == 200, r.text
    r = await http.post(f"/api/v1/dossiers/{answered}/notes", headers=leon, json={"text": "Vu."})
    assert r.status_code == 200, r.text
    await timeline(answered, "response", "note")
    await timeline(homonym, "response")

    done = await http.post(ERASE, headers=admin, json={"email": email})
    assert done.status_code == 200, done.text
    # the answered dossier's take, response and note, the held one's take (not the homonym's)
    assert done.json()["erased"]["timeline_entries"] == 4
    tomb = await pool.fetchval(
        "SELECT audit.tombstone(erased_at) FROM audit.erased_staff WHERE user_id = $1", user
    )
    assert tomb.startswith("Personne effacée le ")
    # a technician who left is no longer mailed with the team
    assert email not in await directory.emails_with_role(pool, Role.technician)

    got = await timeline(answered, "response")
    assert name not in str(got), got
    by_kind = {e["kind"]: e for e in got["timeline"]}
    assert by_kind["taken"]["author"] == tomb
    assert by_kind["taken"]["text"] == f"Pris en charge par {tomb}."
    assert by_kind["response"]["author"] == tomb
    assert by_kind["response"]["text"] == f"Bonjour, ici {tomb} : réimportez le relevé."
    assert by_kind["note"]["author"] == tomb
    assert got["technician"]["name"] == tomb
    # later steps of a dossier they held: the projection writes the tombstone too
    r = await http.post(f"/api/v1/dossiers/{held}/take?takeover=true", headers=admin)
    assert r.status_code == 200, r.text
    got = await eventually(lambda: _with_entry(http, admin, held, "Repris par"), timeout=60)
    taken_over = [e for e in got["timeline"] if e["text"].startswith("Repris par")]
    assert taken_over[0]["text"].endswith(f"(suivi jusque-là par {tomb}).")
    assert name not in str(got), got
    # a customer bearing the same name keeps it, and so does their dossier
    got = await timeline(homonym, "response")
    assert got["requester"]["name"] == name
    assert [e["author"] for e in got["timeline"] if e["kind"] == "received"] == [name]

    # again: nothing more to replace
    again = await http.post(ERASE, headers=admin, json={"email": email})
    assert again.status_code == 200
    assert again.json()["erased"]["timeline_entries"] == 0


async def _with_entry(
    http: httpx.AsyncClient, headers: dict[str, str], dossier_id: str, start: str
) -> dict[str, Any] | None:
    got = (await http.get(f"/api/v1/dossiers/{dossier_id}", headers=headers)).json()
    return got if any(e["text"].startswith(start) for e in got["timeline"]) else None


async def test_retention_erases_a_dossier_closed_long_ago_and_not_a_recent_one(
    http: httpx.AsyncClient, system: Any, pool: asyncpg.Pool
) -> None:
    admin, tech = auth(system.tokens[Role.admin]), auth(system.tokens[Role.technician])
    email, name, token, word = await a_customer(pool)
    ids = []
    for which in ("ancien", "récent"):
        r = await http.post(
            "/api/v1/requests",
            headers=auth(token),
            json={
                "requester": {"email": email, "name": name},
                "software": "manao-compta",
                "subject": f"Sujet {which} {word}",
                "description": f"Texte {which}.",
            },
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    for dossier_id in ids:
        await closed(http, tech, dossier_id)
    old, recent = ids
    settings = system.settings
    days = settings.personal_data_retention_days + settings.reopen_window_days
    # aged in the read model: closed just past the retention (and the reopen window)
    await pool.execute(
        "UPDATE dossier.dossiers SET closed_at = now() - make_interval(days => $2) WHERE id = $1",
        uuid.UUID(old),
        days + 1,
    )
    await pool.execute(
        "UPDATE dossier.dossiers SET closed_at = now() - make_interval(days => $2) WHERE id = $1",
        uuid.UUID(recent),
        days - 1,
    )
    temporal = await temporal_client.connect(settings.temporal_address)
    schedule = temporal.get_schedule_handle("personal-data-retention")

    async def described() -> Any:
        try:
            return await schedule.describe()
        except RPCError:
            return None

    description = await eventually(described, timeout=60)
    calendar = description.schedule.spec.calendars[0]
    assert (calendar.hour[0].start, calendar.minute[0].start) == (3, 30)
    assert description.schedule.spec.time_zone_name == "Europe/Paris"
    await schedule.trigger()

    async def erased() -> bool:
        return bool(
            await pool.fetchval(
                """SELECT history_deleted_at IS NOT NULL AND streams_purged_at IS NOT NULL
                   FROM audit.erasures WHERE dossier_id = $1""",
                uuid.UUID(old),
            )
        )

    await eventually(erased, timeout=120)
    got = (await http.get(f"/api/v1/dossiers/{old}", headers=admin)).json()
    assert got["requester"]["name"].startswith("Personne effacée le ")
    assert word not in str(got) and got["status"] == "closed"
    kept = (await http.get(f"/api/v1/dossiers/{recent}", headers=admin)).json()
    assert kept["requester"]["name"] == name and word in kept["subject"]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit.erasures WHERE dossier_id = $1", uuid.UUID(recent)
        )
        == 0
    )
    await temporal.get_workflow_handle(recent).describe()  # still there
    await eventually(lambda: history_gone(temporal, old), timeout=60)
    # the account is left: retention erases dossiers, not people
    assert await pool.fetchval("SELECT name FROM directory.users WHERE email = $1", email) == name
