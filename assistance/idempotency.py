"""`Idempotency-Key` on every write of the HTTP API: one atomic mechanism (API.md).

A pure ASGI middleware sits in front of every route, so no write can forget it: each
POST, PUT, PATCH or DELETE under `/api/v1/` that carries the header is

1. scoped to its caller (the token's user, or `anonymous`) and its route (the method and the
   path, which name the route template and its parameters);
2. claimed before anything acts, by one `INSERT … ON CONFLICT` into `web.idempotency`
   (state `in_progress`, with a lease);
3. answered, and the answer stored (status, headers, body): the same key with the same body
   then replays it byte for byte with `Idempotent-Replayed: true` (4xx are replayed like 2xx);
   the same key with another body is a 422 `idempotency_key_reused`; while the first is still
   running a twin waits for it a little, then gets a 409 `idempotency_in_flight`.

A 5xx or a crash releases the claim so that a retry acts (a crashed process's claim is taken
back once its lease is over). A 202 (a dossier command whose workflow has not answered yet) is
kept re-runnable: a retry with the same key runs again and, the key being the Temporal update
id too (`operation_id`), reads the outcome of the same update instead of acting twice.
Keys are kept `RETENTION`; older ones are purged as new ones come (docs/decisions/0012).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
from fastapi import FastAPI, Request

from assistance import directory

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PREFIX = "/api/v1/"
MAX_KEY_LENGTH = 200
LEASE = timedelta(seconds=120)  # longer than any write takes; past it a claim is abandoned
WAIT_S = 15.0  # a twin waits this long for the first to finish, then 409
POLL_S = 0.05
RETENTION = timedelta(hours=24)
PURGE_EVERY_S = 300.0
MAX_BUFFERED_BYTES = 64 * 1024 * 1024  # the body cap answers long before this

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def key_problem(key: str) -> str | None:
    """Why a key is refused (French, shown to a person), or None."""
    if not key:
        return "La clé d'idempotence est vide."
    if len(key) > MAX_KEY_LENGTH:
        return f"La clé d'idempotence dépasse {MAX_KEY_LENGTH} caractères."
    if any(not 0x20 <= ord(c) <= 0x7E for c in key):
        return "La clé d'idempotence ne doit contenir que des caractères ASCII imprimables."
    return None


def operation_id(caller: str, route: str, key: str) -> str:
    """The id of the operation a key names; dossier commands use it as the Temporal update
    id, so a retried command is deduplicated by Temporal too."""
    digest = hashlib.sha256(f"{caller}\n{route}\n{key}".encode()).hexdigest()
    return f"k-{digest[:40]}"


def command_id(request: Request) -> str:
    """The operation id of this request: from its key, else a fresh server-generated one."""
    given = request.scope.get("state", {}).get("idempotency_operation")
    return str(given) if given else f"s-{uuid.uuid4().hex}"


def request_hash(scope: Scope, body: bytes) -> str:
    """The query and the body, canonical: JSON key order and spacing, and a multipart
    boundary, do not make two equal requests different."""
    headers = _headers(scope)
    content_type = headers.get("content-type", "")
    canonical: Any
    if "json" in content_type:
        try:
            canonical = json.loads(body) if body else None
        except ValueError:
            canonical = body.hex()
    else:
        if "boundary=" in content_type:
            boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip('"')
            if boundary:
                body = body.replace(boundary.encode("latin-1"), b"--boundary--")
        canonical = hashlib.sha256(body).hexdigest()
    query = sorted(parse_qsl(scope.get("query_string", b"").decode("latin-1"), True))
    payload = json.dumps({"query": query, "body": canonical}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


# --- the store -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[list[str]]
    body: bytes


@dataclass(frozen=True)
class Claimed:
    token: uuid.UUID
    previous: Answer | None  # the stored 202 when a pending command is run again


class Reused:
    pass


class Busy:
    pass


async def claim(
    conn: asyncpg.Connection, caller: str, route: str, key: str, digest: str
) -> Claimed | Answer | Reused | Busy:
    """Claim the key atomically, or say what was there."""
    token = uuid.uuid4()
    async with conn.transaction():
        inserted = await conn.fetchval(
            """INSERT INTO web.idempotency
                   (caller, route, key, request_hash, state, claim, lease_until)
               VALUES ($1, $2, $3, $4, 'in_progress', $5, now() + $6)
               ON CONFLICT (caller, route, key) DO NOTHING
               RETURNING true""",
            caller,
            route,
            key,
            digest,
            token,
            LEASE,
        )
        if inserted:
            return Claimed(token, None)
        row = await conn.fetchrow(
            """SELECT request_hash, state, status, headers, body, lease_until < now() AS stale
               FROM web.idempotency WHERE caller = $1 AND route = $2 AND key = $3
               FOR UPDATE""",
            caller,
            route,
            key,
        )
        if row is None:  # released between the two statements: the caller tries again
            return Busy()
        if row["request_hash"] != digest:
            return Reused()
        stored = Answer(row["status"], row["headers"], row["body"]) if row["status"] else None
        if row["state"] == "done":
            assert stored is not None
            return stored
        if row["state"] == "in_progress" and not row["stale"]:
            return Busy()
        await conn.execute(
            """UPDATE web.idempotency
               SET state = 'in_progress', claim = $4, lease_until = now() + $5,
                   updated_at = now()
               WHERE caller = $1 AND route = $2 AND key = $3""",
            caller,
            route,
            key,
            token,
            LEASE,
        )
        return Claimed(token, stored if row["state"] == "pending" else None)


async def finish(conn: asyncpg.Pool | asyncpg.Connection, token: uuid.UUID, answer: Answer) -> None:
    """Store the answer: final, or re-runnable when it is a 202 (outcome still pending)."""
    await conn.execute(
        """UPDATE web.idempotency
           SET state = $2, status = $3, headers = $4, body = $5, claim = NULL,
               lease_until = NULL, updated_at = now()
           WHERE claim = $1""",
        token,
        "pending" if answer.status == 202 else "done",
        answer.status,
        answer.headers,
        answer.body,
    )


async def release(
    conn: asyncpg.Pool | asyncpg.Connection, token: uuid.UUID, previous: Answer | None
) -> None:
    """A 5xx or a crash: the key is free again (a pending command stays pending)."""
    if previous is None:
        await conn.execute("DELETE FROM web.idempotency WHERE claim = $1", token)
    else:
        await conn.execute(
            """UPDATE web.idempotency SET state = 'pending', claim = NULL, lease_until = NULL,
                   updated_at = now()
               WHERE claim = $1""",
            token,
        )


async def purge(conn: asyncpg.Pool | asyncpg.Connection, older_than: timedelta = RETENTION) -> int:
    done = await conn.execute(
        "DELETE FROM web.idempotency WHERE created_at < now() - $1::interval", older_than
    )
    return int(done.split()[-1])


# --- the middleware --------------------------------------------------------------------------


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._purged_at = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in WRITES
            or not scope["path"].startswith(PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        key = _headers(scope).get(HEADER.lower())
        if key is None:
            await self.app(scope, receive, send)
            return
        problem = key_problem(key)
        if problem is not None:
            await _error(send, 422, "invalid", problem)
            return
        pool: asyncpg.Pool = scope["app"].state.pool
        caller = await _caller(pool, scope)
        if caller is None:  # an unknown token: the route answers 401, nothing to remember
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except _TooLarge:
            await _error(send, 413, "too_large", "La demande est trop volumineuse.", None)
            return
        if body is None:
            return  # the client went away before sending its body
        route = f"{scope['method']} {scope['path'].rstrip('/')}"
        digest = request_hash(scope, body)
        await self._maybe_purge(pool)

        outcome = await self._claim_or_wait(pool, caller, route, key, digest)
        if isinstance(outcome, Answer):
            await _send_answer(send, outcome, replayed=True)
            return
        if isinstance(outcome, Reused):
            await _error(
                send,
                422,
                "idempotency_key_reused",
                "Cette clé d'idempotence a déjà servi pour une autre demande.",
            )
            return
        if isinstance(outcome, Busy):
            await _error(
                send,
                409,
                "idempotency_in_flight",
                "La même demande est déjà en cours ; réessayez dans un instant.",
                retry_after=2,
            )
            return
        await self._act(scope, receive, send, pool, body, outcome, operation_id(caller, route, key))

    async def _act(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        pool: asyncpg.Pool,
        body: bytes,
        claimed: Claimed,
        operation: str,
    ) -> None:
        scope = dict(scope)
        scope["state"] = {**scope.get("state", {}), "idempotency_operation": operation}
        given = False

        async def replay_body() -> Message:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only the client's disconnect

        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await _quietly(pool, release(pool, claimed.token, claimed.previous))
            raise
        if start is None:  # nothing answered: as a crash
            await _quietly(pool, release(pool, claimed.token, claimed.previous))
            return
        answer = Answer(
            status=int(start["status"]),
            headers=[
                [k.decode("latin-1"), v.decode("latin-1")] for k, v in start.get("headers", [])
            ],
            body=b"".join(chunks),
        )
        if answer.status >= 500:
            await _quietly(pool, release(pool, claimed.token, claimed.previous))
        else:
            await _quietly(pool, finish(pool, claimed.token, answer))
        await _send_answer(send, answer, replayed=False)

    async def _claim_or_wait(
        self, pool: asyncpg.Pool, caller: str, route: str, key: str, digest: str
    ) -> Claimed | Answer | Reused | Busy:
        deadline = time.monotonic() + WAIT_S
        while True:
            async with pool.acquire() as conn:
                outcome = await claim(conn, caller, route, key, digest)
            if not isinstance(outcome, Busy) or time.monotonic() > deadline:
                return outcome
            await asyncio.sleep(POLL_S)

    async def _maybe_purge(self, pool: asyncpg.Pool) -> None:
        now = time.monotonic()
        if now - self._purged_at < PURGE_EVERY_S:
            return
        self._purged_at = now
        try:
            async with pool.acquire() as conn:
                await purge(conn)
        except (OSError, asyncpg.PostgresError):
            log.warning("idempotency keys not purged this time", exc_info=True)


async def _quietly(pool: asyncpg.Pool, step: Awaitable[None]) -> None:
    """Storing or releasing a claim failed (PostgreSQL gone): the answer still goes out, and the
    claim's lease frees the key later."""
    try:
        await step
    except Exception:  # noqa: BLE001 - logged; the lease is the fallback
        log.warning("idempotency claim not updated", exc_info=True)


def _headers(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found


async def _caller(pool: asyncpg.Pool, scope: Scope) -> str | None:
    authorization = _headers(scope).get("authorization")
    if authorization is None:
        return "anonymous"
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    who = await directory.authenticate(pool, token.strip())
    if who is None or who.user_id is None:
        return None
    return str(who.user_id)


class _TooLarge(Exception):
    pass


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BUFFERED_BYTES:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_answer(send: Send, answer: Answer, *, replayed: bool) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
    if replayed:
        headers.append((REPLAYED.lower().encode(), b"true"))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})


async def _error(
    send: Send,
    status: int,
    code: str,
    message: str,
    field: str | None = HEADER,
    retry_after: int | None = None,
) -> None:
    body = json.dumps(
        {"error": {"code": code, "message": message, "field": field}}, ensure_ascii=False
    ).encode()
    headers = [["content-type", "application/json"], ["content-length", str(len(body))]]
    if retry_after is not None:
        headers.append(["retry-after", str(retry_after)])
    await _send_answer(send, Answer(status, headers, body), replayed=False)


# --- the OpenAPI document --------------------------------------------------------------------

PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Rejouer sans double effet : la même clé avec le même corps rejoue la première réponse "
        f"(en-tête `{REPLAYED}: true`) ; avec un autre corps, 422 `idempotency_key_reused` ; "
        "pendant que la première est en cours, 409 `idempotency_in_flight`. Propre à "
        "l'appelant et à la route, gardée 24 h. Au plus 200 caractères ASCII imprimables."
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": "^[\\x20-\\x7E]+$",
    },
}
RESPONSES = {
    "409": {"description": "La même demande (même `Idempotency-Key`) est encore en cours"},
    "422": {"description": "Demande invalide, ou `Idempotency-Key` déjà servie autrement"},
}


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the header parameter (and its refusals) to every write operation under /api/v1."""
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(PREFIX):
            continue
        for method, operation in operations.items():
            if method.upper() not in WRITES or not isinstance(operation, dict):
                continue
            parameters = operation.setdefault("parameters", [])
            if not any(
                p.get("name") == HEADER and p.get("in") == "header"
                for p in parameters
                if isinstance(p, dict)
            ):
                parameters.append(dict(PARAMETER))
            responses = operation.setdefault("responses", {})
            for status, description in RESPONSES.items():
                responses.setdefault(status, dict(description))
    return schema


def install(app: FastAPI) -> None:
    """The middleware in front of every route, and the header in the OpenAPI document."""
    app.add_middleware(IdempotencyMiddleware)
    previous = app.openapi

    def openapi() -> dict[str, Any]:
        return document(previous())

    app.openapi = openapi  # type: ignore[method-assign]
