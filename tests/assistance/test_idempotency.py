"""`Idempotency-Key` on every write (API.md), over the real stack: every write operation the
OpenAPI lists documents and honours the key; concurrent twins act once; a claim is atomic,
released by a 5xx or a crash, taken back past its lease, and purged after its retention."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from assistance import db, directory, idempotency
from assistance.bus import Bus
from assistance.directory import Role
from tests.helpers import auth, deposit_body
from tests.services.bugs.support import new_bug
from tests.services.training.support import hand_over_order, request_over_nats

WRITES = ("post", "put", "patch", "delete")


@pytest.fixture
async def pool(system: Any) -> AsyncIterator[asyncpg.Pool]:
    opened = await db.create_pool(system.settings.database_url, 4)
    try:
        yield opened
    finally:
        await opened.close()


def key() -> dict[str, str]:
    return {idempotency.HEADER: f"test-{uuid.uuid4()}"}


# --- pure parts ---------------------------------------------------------------------------------


def test_keys_are_printable_ascii_of_at_most_200_characters() -> None:
    assert idempotency.key_problem("ci-run-8812") is None
    assert idempotency.key_problem("k" * 200) is None
    assert idempotency.key_problem("k" * 201) == ("La clé d'idempotence dépasse 200 caractères.")
    assert idempotency.key_problem("") == "La clé d'idempotence est vide."
    for bad in ("clé", "a\tb", "a\x7fb", "a\x00b"):
        assert idempotency.key_problem(bad) == (
            "La clé d'idempotence ne doit contenir que des caractères ASCII imprimables."
        ), bad


def test_the_request_hash_ignores_json_layout_and_multipart_boundaries() -> None:
    def scope(content_type: str, query: bytes = b"") -> dict[str, Any]:
        return {"headers": [(b"content-type", content_type.encode())], "query_string": query}

    json_type = scope("application/json")
    same = idempotency.request_hash(json_type, b'{"a": 1, "b": [1, 2]}')
    assert idempotency.request_hash(json_type, b'{"b":[1,2],"a":1}') == same
    assert idempotency.request_hash(json_type, b'{"a": 2, "b": [1, 2]}') != same
    assert idempotency.request_hash(scope("application/json", b"x=1"), b'{"a":1,"b":[1,2]}') != (
        same
    )
    one = b'--AAA\r\nContent-Disposition: form-data; name="f"\r\n\r\nv\r\n--AAA--\r\n'
    two = one.replace(b"AAA", b"BBB")
    assert idempotency.request_hash(
        scope("multipart/form-data; boundary=AAA"), one
    ) == idempotency.request_hash(scope("multipart/form-data; boundary=BBB"), two)


def test_the_operation_id_is_per_caller_route_and_key() -> None:
    base = idempotency.operation_id("u1", "POST /api/v1/dossiers/d/take", "k")
    assert base == idempotency.operation_id("u1", "POST /api/v1/dossiers/d/take", "k")
    assert base.startswith("k-") and len(base) == 42
    assert base != idempotency.operation_id("u2", "POST /api/v1/dossiers/d/take", "k")
    assert base != idempotency.operation_id("u1", "POST /api/v1/dossiers/d/close", "k")
    assert base != idempotency.operation_id("u1", "POST /api/v1/dossiers/d/take", "k2")


# --- every write route --------------------------------------------------------------------------


def _path_with_values(path: str, operation: dict[str, Any]) -> str:
    for parameter in operation.get("parameters", []):
        if parameter.get("in") != "path":
            continue
        schema = parameter.get("schema", {})
        if schema.get("format") == "uuid":
            value = str(uuid.uuid4())
        elif schema.get("type") == "integer":
            value = "1"
        else:
            value = "inconnu"
        path = path.replace("{" + parameter["name"] + "}", value)
    return path


async def test_every_write_operation_documents_and_honours_the_key(
    http: httpx.AsyncClient, system
) -> None:
    """Enumerated from the served OpenAPI: none can be forgotten. Unknown ids and empty bodies
    make every first answer a 4xx, which the key replays like a 2xx."""
    document = (await http.get("/openapi.json")).json()
    admin = auth(system.tokens[Role.admin])
    checked = []
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            if method not in WRITES:
                continue
            names = [(p["name"], p["in"]) for p in operation.get("parameters", []) if "name" in p]
            assert (idempotency.HEADER, "header") in names, (method, path)
            assert "422" in operation["responses"] and "409" in operation["responses"]
            url = _path_with_values(path, operation)
            headers = {**admin, **key()}
            first = await http.request(method.upper(), url, headers=headers, json={})
            again = await http.request(method.upper(), url, headers=headers, json={})
            assert first.status_code < 500, (method, path, first.text)
            assert idempotency.REPLAYED not in first.headers, (method, path)
            assert again.headers.get(idempotency.REPLAYED) == "true", (method, path, again.text)
            assert (again.status_code, again.content) == (first.status_code, first.content)
            reused = await http.request(
                method.upper(), url, headers=headers, json={"autre": "corps"}
            )
            assert reused.status_code == 422, (method, path, reused.text)
            assert reused.json()["error"] == {
                "code": "idempotency_key_reused",
                "message": "Cette clé d'idempotence a déjà servi pour une autre demande.",
                "field": "Idempotency-Key",
            }
            checked.append(f"{method.upper()} {path}")
    # the lifecycle commands, the public contract and each service's writes are among them
    for expected in (
        "POST /api/v1/requests",
        "POST /api/v1/calls",
        "POST /api/v1/dossiers/{dossier_id}/take",
        "POST /api/v1/dossiers/{dossier_id}/responses",
        "POST /api/v1/dossiers/{dossier_id}/reopen",
        "POST /api/v1/bugs/{bug_id}/fix-completed",
        "POST /api/v1/evolutions/{evolution_id}/decision",
        "POST /api/v1/training/appointments/{appointment_id}/held",
    ):
        assert expected in checked, (expected, checked)


async def test_a_bad_key_is_refused_in_french(http: httpx.AsyncClient) -> None:
    for bad, message in (
        ("k" * 201, "La clé d'idempotence dépasse 200 caractères."),
        ("clé-accentuée", None),
    ):
        r = await http.post(
            "/api/v1/requests",
            json=deposit_body(),
            headers={idempotency.HEADER: bad.encode("utf-8")},  # type: ignore[dict-item]
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid"
        assert r.json()["error"]["field"] == "Idempotency-Key"
        if message:
            assert r.json()["error"]["message"] == message


async def test_keys_are_scoped_per_caller_and_route(
    http: httpx.AsyncClient, system, pool: asyncpg.Pool
) -> None:
    shared = key()
    tech = auth(system.tokens[Role.technician])
    customer = auth(system.tokens[Role.customer])
    call = deposit_body(caller_phone="+33 1 23 45 67 89")
    # the same key from an anonymous visitor, a customer and a technician: three deposits
    ids = set()
    for who in ({}, customer, tech):
        r = await http.post("/api/v1/requests", json=deposit_body(), headers={**who, **shared})
        assert r.status_code == 201 and idempotency.REPLAYED not in r.headers
        ids.add(r.json()["id"])
    # and on another route, by the same technician, with another body: a call of its own
    logged = await http.post("/api/v1/calls", json=call, headers={**tech, **shared})
    assert logged.status_code == 201 and idempotency.REPLAYED not in logged.headers
    ids.add(logged.json()["id"])
    assert len(ids) == 4
    rows = await pool.fetch(
        "SELECT caller, route, state, status FROM web.idempotency WHERE key = $1",
        shared[idempotency.HEADER],
    )
    assert sorted((r["route"], r["state"], r["status"]) for r in rows) == [
        ("POST /api/v1/calls", "done", 201),
        ("POST /api/v1/requests", "done", 201),
        ("POST /api/v1/requests", "done", 201),
        ("POST /api/v1/requests", "done", 201),
    ]
    assert "anonymous" in {r["caller"] for r in rows}


async def test_a_twin_of_a_request_still_running_waits_then_gets_409(
    http: httpx.AsyncClient, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first request still acting (its claim within its lease): the twin waits `WAIT_S`,
    then is told in French; once the claim is released (a 5xx, a crash), the retry acts."""
    monkeypatch.setattr(idempotency, "WAIT_S", 0.5)
    body = deposit_body(subject=f"En cours {uuid.uuid4().hex[:8]}")
    headers = key()
    digest = idempotency.request_hash(
        {"headers": [(b"content-type", b"application/json")]}, json.dumps(body).encode()
    )
    async with pool.acquire() as conn:
        running = await idempotency.claim(
            conn, "anonymous", "POST /api/v1/requests", headers[idempotency.HEADER], digest
        )
    assert isinstance(running, idempotency.Claimed)
    twin = await http.post("/api/v1/requests", json=body, headers=headers)
    assert twin.status_code == 409, twin.text
    assert twin.json()["error"] == {
        "code": "idempotency_in_flight",
        "message": "La même demande est déjà en cours ; réessayez dans un instant.",
        "field": "Idempotency-Key",
    }
    await idempotency.release(pool, running.token, None)
    retried = await http.post("/api/v1/requests", json=body, headers=headers)
    assert retried.status_code == 201 and idempotency.REPLAYED not in retried.headers


# --- concurrent twins act once --------------------------------------------------------------


async def _ten_twins(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], body: Any
) -> list[httpx.Response]:
    twins = await asyncio.gather(*(http.post(url, json=body, headers=headers) for _ in range(10)))
    assert len({(r.status_code, r.content) for r in twins}) == 1, [r.text for r in twins]
    assert sum(idempotency.REPLAYED not in r.headers for r in twins) == 1
    return list(twins)


async def test_ten_concurrent_deposits_with_one_key_open_one_dossier(
    http: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    subject = f"Dépôt en double {uuid.uuid4().hex[:8]}"
    twins = await _ten_twins(http, "/api/v1/requests", key(), deposit_body(subject=subject))
    assert twins[0].status_code == 201
    assert (
        await pool.fetchval("SELECT count(*) FROM intake.requests WHERE subject = $1", subject) == 1
    )


async def test_ten_concurrent_reproductions_of_a_bug_with_one_key_act_once(
    http: httpx.AsyncClient, system, pool: asyncpg.Pool
) -> None:
    """Without the key's claim, nine twins would get 409 (already reproduced)."""
    bus = Bus(system.settings.nats_url, name="idempotency-tests")
    await bus.connect(timeout=10)
    try:
        bug_id, _ = await new_bug(bus, software=f"logiciel-{uuid.uuid4().hex[:8]}")
    finally:
        await bus.close()
    developer = {**auth(system.tokens[Role.developer]), **key()}
    body = {"steps": "Exporter un exercice de 13 mois", "environment": "Windows 11"}
    twins = await _ten_twins(http, f"/api/v1/bugs/{bug_id}/reproduced", developer, body)
    assert twins[0].status_code == 200, twins[0].text
    assert twins[0].json()["state"] == "reproduced"
    facts = await pool.fetchval(
        """SELECT count(*) FROM bus.outbox
           WHERE source = 'bugs' AND payload->>'type' = 'bugs.bug.reproduced'
             AND payload->'data'->>'bug_id' = $1""",
        bug_id,
    )
    assert facts == 1


async def test_ten_concurrent_training_outcomes_with_one_key_act_once(
    http: httpx.AsyncClient, system, pool: asyncpg.Pool
) -> None:
    """Training's old wrapper let two concurrent twins act: the second got 409."""
    software = f"t-{uuid.uuid4().hex[:8]}"
    await directory.add_software(pool, software, f"Logiciel {software}")
    user = await directory.create_user(
        pool, f"formateur-{uuid.uuid4().hex[:8]}@manao.eu", "Fanny Formatrice", Role.trainer
    )
    trainer = auth(await directory.issue_token(pool, user, "test"))
    declared = await http.put(
        "/api/v1/training/trainers/me", json={"softwares": [software]}, headers=trainer
    )
    assert declared.status_code == 200, declared.text
    answer = await request_over_nats(system.settings.nats_url, hand_over_order(software))
    held = f"/api/v1/training/appointments/{answer['appointment_id']}/held"
    twins = await _ten_twins(http, held, {**trainer, **key()}, {"notes": "Formation faite."})
    assert twins[0].status_code == 200, twins[0].text
    assert twins[0].json()["status"] == "held"


# --- the claim ----------------------------------------------------------------------------------


async def test_a_claim_is_atomic_released_by_a_failure_and_taken_back_past_its_lease(
    pool: asyncpg.Pool,
) -> None:
    caller, route, k = "u-test", f"POST /api/v1/test/{uuid.uuid4()}", "k"
    async with pool.acquire() as conn:
        first = await idempotency.claim(conn, caller, route, k, "h1")
        assert isinstance(first, idempotency.Claimed) and first.previous is None
        assert isinstance(await idempotency.claim(conn, caller, route, k, "h1"), idempotency.Busy)
        assert isinstance(await idempotency.claim(conn, caller, route, k, "h2"), idempotency.Reused)
        # a 5xx (or a crash caught in the process) releases it: the retry acts
        await idempotency.release(conn, first.token, None)
        second = await idempotency.claim(conn, caller, route, k, "h1")
        assert isinstance(second, idempotency.Claimed)
        # a process that died holding it: its lease runs out, then the key is taken back
        await conn.execute(
            "UPDATE web.idempotency SET lease_until = now() - interval '1 second' WHERE route = $1",
            route,
        )
        third = await idempotency.claim(conn, caller, route, k, "h1")
        assert isinstance(third, idempotency.Claimed) and third.token != second.token
        # the dead holder's late answer changes nothing; the live one's is kept
        await idempotency.finish(conn, second.token, idempotency.Answer(200, [], b"late"))
        answer = idempotency.Answer(201, [["content-type", "application/json"]], b"{}")
        await idempotency.finish(conn, third.token, answer)
        assert await idempotency.claim(conn, caller, route, k, "h1") == answer


async def test_a_pending_answer_is_run_again_and_keeps_its_body_binding(
    pool: asyncpg.Pool,
) -> None:
    caller, route, k = "u-test", f"POST /api/v1/test/{uuid.uuid4()}", "k"
    async with pool.acquire() as conn:
        first = await idempotency.claim(conn, caller, route, k, "h1")
        assert isinstance(first, idempotency.Claimed)
        pending = idempotency.Answer(202, [], b'{"status": "pending"}')
        await idempotency.finish(conn, first.token, pending)
        again = await idempotency.claim(conn, caller, route, k, "h1")
        assert isinstance(again, idempotency.Claimed) and again.previous == pending
        # a 5xx on the second run leaves it pending, bound to its body
        await idempotency.release(conn, again.token, again.previous)
        assert isinstance(await idempotency.claim(conn, caller, route, k, "h2"), idempotency.Reused)
        state = await conn.fetchval("SELECT state FROM web.idempotency WHERE route = $1", route)
        assert state == "pending"


async def test_keys_are_purged_after_their_retention(pool: asyncpg.Pool) -> None:
    route = f"POST /api/v1/test/{uuid.uuid4()}"
    async with pool.acquire() as conn:
        for k, age in (("old", timedelta(hours=25)), ("young", timedelta(hours=1))):
            claimed = await idempotency.claim(conn, "u-test", route, k, "h")
            assert isinstance(claimed, idempotency.Claimed)
            await conn.execute(
                "UPDATE web.idempotency SET created_at = now() - $2::interval "
                "WHERE route = $1 AND key = $3",
                route,
                age,
                k,
            )
        assert await idempotency.purge(conn) >= 1
        left = await conn.fetch("SELECT key FROM web.idempotency WHERE route = $1", route)
        assert [r["key"] for r in left] == ["young"]


async def test_the_per_service_tables_before_this_mechanism_are_dropped(
    pool: asyncpg.Pool,
) -> None:
    """`web.idempotency` is the one store; the tables intake, bugs, training and the dossier
    service kept before it are gone (each service's `020_drop_idempotency.sql`)."""
    left = await pool.fetch(
        "SELECT schemaname FROM pg_tables WHERE tablename = 'idempotency' ORDER BY schemaname"
    )
    assert [r["schemaname"] for r in left] == ["web"]
