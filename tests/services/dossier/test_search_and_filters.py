"""R10 search and the filters of the list and the queue (issue 14, decision 0023), over the
real stack: accents and capitals aside, French stems, the requester, the organisation, every
timeline text the caller may read (never an internal note for a customer), best matches first;
and the filters, with a 422 naming the field for a value nobody knows."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from assistance import db, directory
from assistance.directory import Role
from services.dossier import repo
from tests.helpers import auth, deposit_body, eventually


def _word() -> str:
    """A word no other test writes (letters only: the French stemmer keeps its root)."""
    return "zq" + "".join(random.choices(string.ascii_lowercase, k=8)) + "x"


@pytest.fixture
async def pool(system: Any) -> AsyncIterator[asyncpg.Pool]:
    opened = await db.create_pool(system.settings.database_url, 2)
    try:
        yield opened
    finally:
        await opened.close()


async def _opened(http: httpx.AsyncClient, system: Any, **overrides: Any) -> str:
    r = await http.post("/api/v1/requests", json=deposit_body(**overrides))
    assert r.status_code == 201, r.text
    dossier_id = str(r.json()["id"])
    staff = auth(system.tokens[Role.technician])

    async def opened() -> bool:
        got = await http.get(f"/api/v1/dossiers/{dossier_id}", headers=staff)
        return got.status_code == 200 and any(e["kind"] == "opened" for e in got.json()["timeline"])

    await eventually(opened, timeout=30)
    return dossier_id


async def _found(
    http: httpx.AsyncClient, token: str, expected: set[str], **params: Any
) -> list[str]:
    """The ids the list answers, once the read model shows `expected` among them."""

    async def probe() -> list[str] | None:
        r = await http.get("/api/v1/dossiers", headers=auth(token), params=params)
        assert r.status_code == 200, r.text
        ids = [item["id"] for item in r.json()["items"]]
        assert r.json()["total"] == len(ids)
        return ids if expected <= set(ids) else None

    return await eventually(probe, timeout=30)


async def _ids(http: httpx.AsyncClient, token: str, **params: Any) -> list[str]:
    r = await http.get("/api/v1/dossiers", headers=auth(token), params=params)
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


async def test_accents_capitals_and_stems_do_not_matter(
    http: httpx.AsyncClient, system: Any
) -> None:
    tag = _word()
    dossier = await _opened(
        http, system, subject=f"Les établissements {tag} et l'école", description="Œuvres"
    )
    tech, customer = system.tokens[Role.technician], system.tokens[Role.customer]

    assert await _found(http, tech, {dossier}, q=f"etablissement {tag}") == [dossier]
    assert await _found(http, tech, {dossier}, q=f"ECOLE {tag.upper()}") == [dossier]
    assert await _found(http, tech, {dossier}, q=f"Établissement {tag} oeuvre") == [dossier]
    assert await _found(http, customer, {dossier}, q=f"ecoles {tag}") == [dossier]
    assert await _ids(http, tech, q=f"ecole {tag} introuvable") == []


async def test_the_requester_by_name_and_address_and_the_organisation_by_name(
    http: httpx.AsyncClient, system: Any, pool: asyncpg.Pool
) -> None:
    tag = _word()
    org = await directory.create_organisation(pool, f"Établissements Médard {tag}", [f"{tag}.fr"])
    email = f"gaelle.{tag}@{tag}.fr"
    # a deposit belongs to the organisation of the customer owning its address
    await directory.create_user(pool, email, f"Gaëlle Brûlé{tag}", Role.customer, org)
    dossier = await _opened(
        http,
        system,
        requester={"email": email, "name": f"Gaëlle Brûlé{tag}"},
        subject="Relevé bancaire illisible",
    )
    tech = system.tokens[Role.technician]

    assert await _found(http, tech, {dossier}, q=f"brule{tag}") == [dossier]
    assert await _found(http, tech, {dossier}, q=f"GAELLE brûlé{tag}") == [dossier]
    assert await _found(http, tech, {dossier}, q=email) == [dossier]
    assert await _found(http, tech, {dossier}, q=f"medard {tag}") == [dossier]
    assert await _found(http, tech, {dossier}, q=f"etablissements medard {tag}") == [dossier]
    assert await _found(http, tech, {dossier}, organisation=str(org), q=f"{tag}") == [dossier]
    # a customer of another organisation finds nothing of it, by any of its words
    assert await _ids(http, system.tokens[Role.customer], q=f"medard {tag}") == []
    assert await _ids(http, system.tokens[Role.customer], q=email) == []


async def test_timeline_texts_by_the_readers_visibility(
    http: httpx.AsyncClient, system: Any
) -> None:
    answered, noted = _word(), _word()
    dossier = await _opened(http, system, subject="Lettrage automatique")
    tech, customer = system.tokens[Role.technician], system.tokens[Role.customer]
    base = f"/api/v1/dossiers/{dossier}"
    assert (await http.post(f"{base}/take", headers=auth(tech))).status_code == 200
    r = await http.post(
        f"{base}/responses", headers=auth(tech), json={"text": f"Activez le réglage {answered}."}
    )
    assert r.status_code == 200, r.text
    r = await http.post(
        f"{base}/notes", headers=auth(tech), json={"text": f"Client à rappeler : {noted}."}
    )
    assert r.status_code == 200, r.text

    assert await _found(http, tech, {dossier}, q=answered) == [dossier]
    assert await _found(http, customer, {dossier}, q=f"réglages {answered}") == [dossier]
    assert await _found(http, tech, {dossier}, q=f"rappeler {noted}") == [dossier]
    # R10 for customers: never found through a staff-only note, not even by its exact words
    assert await _ids(http, customer, q=noted) == []
    assert await _ids(http, customer, q=f"rappeler {noted}") == []


async def test_best_matches_come_first(http: httpx.AsyncClient, system: Any) -> None:
    tag = _word()
    in_history = await _opened(http, system, subject="Clôture annuelle", description="Rien")
    tech = system.tokens[Role.technician]
    base = f"/api/v1/dossiers/{in_history}"
    assert (await http.post(f"{base}/take", headers=auth(tech))).status_code == 200
    r = await http.post(f"{base}/responses", headers=auth(tech), json={"text": f"Voir {tag}."})
    assert r.status_code == 200, r.text
    in_subject = await _opened(http, system, subject=f"Paramétrage {tag}", description="Rien")

    both = {in_subject, in_history}
    assert await _found(http, tech, both, q=tag) == [in_subject, in_history]
    reference = (await http.get(base, headers=auth(tech))).json()["reference"]
    assert (await _ids(http, tech, q=reference.lower()))[0] == in_history


async def test_filters_of_the_list(http: httpx.AsyncClient, system: Any) -> None:
    tag = _word()
    tech = system.tokens[Role.technician]
    mine = await _opened(http, system, subject=f"Filtre {tag} un")
    free = await _opened(http, system, subject=f"Filtre {tag} deux", software="manao-paie")
    assert (await http.post(f"/api/v1/dossiers/{mine}/take", headers=auth(tech))).is_success
    diagnosis = {"kind": "usage", "context": "Cabinet", "need": "Un réglage"}
    r = await http.post(f"/api/v1/dossiers/{mine}/diagnosis", headers=auth(tech), json=diagnosis)
    assert r.status_code == 200, r.text
    me = (await http.get(f"/api/v1/dossiers/{mine}", headers=auth(tech))).json()["technician"]

    assert await _found(http, tech, {mine}, q=tag, technician="me") == [mine]
    assert await _found(http, tech, {mine}, q=tag, technician=me["id"]) == [mine]
    assert await _found(http, tech, {free}, q=tag, technician="none") == [free]
    assert await _found(http, tech, {free}, q=tag, software="manao-paie") == [free]
    assert await _found(http, tech, {mine}, q=tag, software="manao-compta") == [mine]
    assert await _found(http, tech, {mine}, q=tag, kind="usage") == [mine]
    assert await _ids(http, tech, q=tag, kind="bug") == []
    assert await _found(http, tech, {free}, q=tag, status="new") == [free]
    assert set(await _found(http, tech, {mine, free}, q=tag, open="true")) == {mine, free}
    assert await _ids(http, tech, q=tag, open="false") == []
    assert await _ids(http, tech, q=tag, technician=str(uuid.uuid4())) == []
    # a customer filters their own organisation's dossiers the same way
    customer = system.tokens[Role.customer]
    assert await _found(http, customer, {free}, q=tag, open="true", software="manao-paie") == [free]


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"technician": "personne"}, "technician", "« me »"),
        ({"software": "manao-inconnu"}, "software", "logiciel inconnu"),
        ({"kind": "panne"}, "kind", "Valeur inconnue"),
        ({"status": "ouvert"}, "status", "Valeur inconnue"),
        ({"open": "peut-être"}, "open", "vrai/faux"),
    ],
)
async def test_an_unknown_filter_value_is_a_422_naming_the_field(
    http: httpx.AsyncClient, system: Any, params: dict[str, str], field: str, words: str
) -> None:
    tech = auth(system.tokens[Role.technician])
    for path in ("/api/v1/dossiers", "/api/v1/queue"):
        if path == "/api/v1/queue" and field == "open":
            continue
        r = await http.get(path, headers=tech, params=params)
        assert r.status_code == 422, (path, r.text)
        error = r.json()["error"]
        assert error["field"] == field
        assert error["message"].startswith(f"{field} : ") and words in error["message"], error


async def test_the_queue_filters_keep_each_position_in_the_whole_queue(
    http: httpx.AsyncClient, system: Any
) -> None:
    tech = system.tokens[Role.technician]
    taken = await _opened(http, system, subject="File filtrée, prise")
    paie = await _opened(http, system, subject="File filtrée, paie", software="manao-paie")
    assert (await http.post(f"/api/v1/dossiers/{taken}/take", headers=auth(tech))).is_success

    async def queue(**params: str) -> list[dict[str, Any]]:
        r = await http.get("/api/v1/queue", headers=auth(tech), params=params)
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    async def projected() -> bool:
        return any(q["id"] == taken and q["technician"] for q in await queue())

    await eventually(projected, timeout=30)
    everything = {q["id"]: q["position"] for q in await queue()}
    mine = await queue(technician="me")
    assert taken in {q["id"] for q in mine} and paie not in {q["id"] for q in mine}
    assert all(q["technician"] for q in mine)
    assert {q["id"]: q["position"] for q in mine} == {q["id"]: everything[q["id"]] for q in mine}
    unassigned = await queue(technician="none")
    assert paie in {q["id"] for q in unassigned} and all(not q["technician"] for q in unassigned)
    by_software = await queue(software="manao-paie")
    assert paie in {q["id"] for q in by_software}
    assert {q["software"] for q in by_software} == {"manao-paie"}
    assert {q["status"] for q in await queue(status="in_progress")} <= {"in_progress"}


async def test_words_of_different_texts_match_together(
    http: httpx.AsyncClient, system: Any, pool: asyncpg.Pool
) -> None:
    """« paie export »: one word in the subject, one in a reply, one in the organisation's
    name, one in a note; a customer's query matches only through what a customer reads."""
    subject, replied, noted, named = _word(), _word(), _word(), _word()
    domain = _word()
    org = await directory.create_organisation(pool, f"Société {named}", [f"{domain}.fr"])
    email = f"marie@{domain}.fr"
    user = await directory.create_user(pool, email, "Marie Lefèvre", Role.customer, org)
    dossier = await _opened(
        http,
        system,
        requester={"email": email, "name": "Marie Lefèvre"},
        subject=f"Éditions {subject}",
        description="Rien de plus",
    )
    tech = system.tokens[Role.technician]
    customer = await directory.issue_token(pool, user, "test")
    base = f"/api/v1/dossiers/{dossier}"
    assert (await http.post(f"{base}/take", headers=auth(tech))).status_code == 200
    r = await http.post(
        f"{base}/responses", headers=auth(tech), json={"text": f"Réglez l'échéancier {replied}."}
    )
    assert r.status_code == 200, r.text
    r = await http.post(f"{base}/notes", headers=auth(tech), json={"text": f"Piste : {noted}."})
    assert r.status_code == 200, r.text

    # staff: every text, accents and capitals aside
    assert await _found(http, tech, {dossier}, q=f"{subject} {noted}") == [dossier]
    assert await _found(http, tech, {dossier}, q=f"EDITION {subject} echeanciers {replied}") == [
        dossier
    ]
    assert await _found(http, tech, {dossier}, q=f"{named} {replied} {noted}") == [dossier]
    assert await _found(http, tech, {dossier}, q=f"lefevre {noted}") == [dossier]
    assert await _ids(http, tech, q=f"{subject} {_word()}") == []
    # the customer: what a customer reads, never the note
    assert await _found(http, customer, {dossier}, q=f"édition {subject} {replied}") == [dossier]
    assert await _found(http, customer, {dossier}, q=f"societe {named} {replied}") == [dossier]
    assert await _ids(http, customer, q=f"{subject} {noted}") == []
    assert await _ids(http, customer, q=f"{replied} {noted}") == []
    # a renamed organisation is found by its new name at once, with the other texts
    renamed = _word()
    await pool.execute("UPDATE directory.organisations SET name = $2 WHERE id = $1", org, renamed)
    assert await _ids(http, tech, q=f"{renamed} {subject}") == [dossier]
    assert await _ids(http, tech, q=f"{named} {subject}") == []


async def test_a_dossier_beyond_the_size_of_one_document(pool: asyncpg.Pool) -> None:
    """A tsvector holds at most 1 MB: a dossier whose texts hold more keeps the words of its
    first texts, and the projection never fails on it (written and rolled back here)."""
    dossier, tag = uuid.uuid4(), _word()

    def text(n: int) -> str:
        return " ".join(
            "zq" + "".join(random.choices(string.ascii_lowercase, k=60)) for _ in range(n)
        )

    marked = {1: f"premier{tag} ", 10: f"dernier{tag} "}  # in the first text, in the last
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(
                """INSERT INTO dossier.dossiers (id, reference, status, channel, software,
                       subject, requester_email, requester_name, received_at, first_response_due)
                   VALUES ($1, $2, 'new', 'web', 'manao-compta', $3, 'a@b.fr', 'A',
                           now(), now())""",
                dossier,
                f"T-{tag}",
                f"Volumineux {tag}",
            )
            for seq in range(1, 11):
                await conn.execute(
                    """INSERT INTO dossier.timeline (event_id, dossier_id, at, kind, visibility,
                           text, seq) VALUES ($1, $2, now(), 'responded', 'customer', $3, $4)""",
                    f"{dossier}:{seq}",
                    dossier,
                    marked.get(seq, "") + text(2_000),
                    seq,
                )
            sql = f"SELECT id FROM ({repo._matches('$1', staff=False)}) m"
            assert [r["id"] for r in await conn.fetch(sql, f"volumineux premier{tag}")] == [dossier]
            assert await conn.fetch(sql, f"volumineux dernier{tag}") == []
        finally:
            await tx.rollback()


async def test_the_search_reads_the_gin_indexes(system: Any, pool: asyncpg.Pool) -> None:
    """No sequential scan for the words: one GIN index per audience (decision 0023)."""
    for staff, index in ((False, "search_documents_customer"), (True, "search_documents_staff")):
        sql = f"EXPLAIN SELECT * FROM ({repo._matches('$1', staff=staff)}) m"
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(r[0] for r in await conn.fetch(sql, "paie export"))
        assert index in plan, plan
        assert "Seq Scan" not in plan, plan
