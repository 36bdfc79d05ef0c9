"""The permission table (docs/permissions.md, issue 13) walked over the served API.

Every `/api/v1` operation of the OpenAPI document must have a row; every row is called with a
token of every role (and none) and must be refused (401/403) exactly where the table says ✗.
Ownership (own organisation, own bug, own software, own appointment) is the table's last
column; it is checked with two organisations' customers below and in each service's tests.

To rewrite the table after a deliberate change, run this file with `PERMISSIONS_WRITE=1`, then
read the diff: it is the change of who may do what.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from assistance import db, directory
from assistance.directory import Role
from tests.helpers import auth, deposit_body

TABLE = Path(__file__).parent.parent / "docs" / "permissions.md"
CALLERS: list[Role | None] = [None, *Role]
HEADER = ["opération", "anonyme", *(r.value for r in Role), "propriété"]
ALLOWED, REFUSED = "✓", "✗"

# Who, among those the role admits, may act: checked after the role (404 when the caller may
# not even learn the thing exists, 403 otherwise).
OWNERSHIP: dict[str, str] = {
    "GET /api/v1/dossiers/{dossier_id}": "customer: own organisation only (else 404)",
    "GET /api/v1/dossiers": "customer: own organisation only",
    "GET /api/v1/dossiers/{dossier_id}/commands/{command_id}": "customer: own organisation",
    "POST /api/v1/dossiers/{dossier_id}/responses": (
        "customer: own organisation; technician: the one following it (admin may)"
    ),
    "POST /api/v1/dossiers/{dossier_id}/reopen": "customer: own organisation",
    "POST /api/v1/dossiers/{dossier_id}/confirm": "customer: own organisation",
    "POST /api/v1/dossiers/{dossier_id}/take": (
        "admin takes over a followed dossier only with `takeover=true` (recorded)"
    ),
    "POST /api/v1/dossiers/{dossier_id}/diagnosis": "the technician following it (admin may)",
    "POST /api/v1/dossiers/{dossier_id}/close": "the technician following it (admin may)",
    "POST /api/v1/dossiers/{dossier_id}/release": "the technician following it (admin may)",
    "POST /api/v1/requests": (
        "anonymous: `organisation` ignored, taken from a known customer's address; "
        "customer: own organisation; technician/admin may name one"
    ),
    "POST /api/v1/bugs/{bug_id}/fix-completed": (
        "developer: own (claimed) bug only, once (403 / 409); admin any"
    ),
    "POST /api/v1/bugs/{bug_id}/reproduced": "developer: unclaimed or own bug (409 otherwise)",
    "POST /api/v1/bugs/{bug_id}/diagnosis": "developer: unclaimed or own bug (409 otherwise)",
    "POST /api/v1/bugs/{bug_id}/not-reproducible": "developer: unclaimed or own bug",
    "POST /api/v1/bugs/{bug_id}/claim": "developer: unclaimed bug (admin may reassign)",
    "POST /api/v1/evolutions/{evolution_id}/decision": "product manager of its software",
    "POST /api/v1/evolutions/{evolution_id}/group": "product manager: of its software",
    "GET /api/v1/mail/attachments/{attachment_id}": "customer: own organisation's dossier",
    "POST /api/v1/softwares/{software}/releases": "product manager of that software",
    "POST /api/v1/operations/personal-data/erase": (
        "409 while a dossier of the person is open, unless `force` (audited)"
    ),
    "GET /api/v1/follow/{token}": "whoever holds the dossier's signed follow link (not revoked)",
    "GET /api/v1/follow/{token}/attachments/{attachment_id}": (
        "the follow link's holder: files of that dossier's messages a customer reads (else 404), "
        "sent on (303) to mail intake with a grant for that file"
    ),
    "GET /api/v1/mail/attachments/{attachment_id}/granted": (
        "whoever brings an unexpired grant signed for that file (else 404)"
    ),
    "POST /api/v1/follow-links": "links are mailed to the address only, never answered",
    "PUT /api/v1/training/trainers/{trainer_id}": "trainer: themself (the training lead any)",
    "POST /api/v1/training/trainers/{trainer_id}/absences": (
        "trainer: their own (the training lead any)"
    ),
    "DELETE /api/v1/training/trainers/{trainer_id}/absences/{absence_id}": (
        "trainer: their own (the training lead any)"
    ),
    "POST /api/v1/training/appointments/{appointment_id}/cancel": "trainer: own appointment",
    "POST /api/v1/training/appointments/{appointment_id}/held": "trainer: own appointment",
    "POST /api/v1/training/appointments/{appointment_id}/missed": "trainer: own appointment",
    "POST /api/v1/training/appointments/{appointment_id}/reschedule": (
        "trainer: own appointment; another trainer: the training lead only"
    ),
}


@pytest.fixture(scope="module")
async def pool(system: Any) -> AsyncIterator[asyncpg.Pool]:
    opened = await db.create_pool(system.settings.database_url, 2)
    try:
        yield opened
    finally:
        await opened.close()


def _operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, item in openapi["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                found.append((method.upper(), path, op))
    return sorted(found, key=lambda o: (o[1], o[0]))


def _url(path: str, op: dict[str, Any]) -> str:
    values: dict[str, str] = {}
    for p in op.get("parameters", []):
        if p["in"] != "path":
            continue
        schema = p.get("schema", {})
        if schema.get("format") == "uuid":
            values[p["name"]] = str(uuid.uuid4())
        elif schema.get("type") == "integer":
            values[p["name"]] = "1"
        else:
            values[p["name"]] = "inconnu-1"
    return re.sub(r"\{(\w+)\}", lambda m: values[m[1]], path)


async def _observe(http: httpx.AsyncClient, tokens: dict[Role, str]) -> dict[str, list[str]]:
    """For every operation, ✓ or ✗ per caller: does the role gate let it through?"""
    openapi = (await http.get("/openapi.json")).json()
    seen: dict[str, list[str]] = {}
    for method, path, op in _operations(openapi):
        row = []
        for caller in CALLERS:
            headers = auth(tokens[caller]) if caller else {}
            kwargs: dict[str, Any] = {"headers": headers}
            if method != "GET":
                kwargs["json"] = {}
            r = await http.request(method, _url(path, op), **kwargs)
            assert r.status_code < 500, (method, path, caller, r.status_code, r.text)
            row.append(REFUSED if r.status_code in (401, 403) else ALLOWED)
        seen[f"{method} {path}"] = row
    return seen


def _render(seen: dict[str, list[str]]) -> str:
    lines = [
        "# Who may do what (issue 13)",
        "",
        "Every operation of the API (`/api/v1`) × every caller. ✓: the role is admitted "
        "(the answer may still be 404/409/422 on the thing itself); ✗: refused (401 without a "
        "token, 403 with one). The last column says which of the admitted callers may act on "
        "which thing. `tests/test_permissions.py` walks this table over the served API with a "
        "token of every role and fails on any difference; it also checks the ownership rules "
        "with the customers of two organisations.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    for key, row in seen.items():
        lines.append(f"| `{key}` | " + " | ".join(row) + f" | {OWNERSHIP.get(key, '')} |")
    return "\n".join(lines) + "\n"


def _parse(text: str) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        table[cells[0].strip("`")] = cells[1 : 1 + len(CALLERS)]
    return table


async def test_the_permission_table_is_what_the_api_enforces(
    http: httpx.AsyncClient, system
) -> None:
    seen = await _observe(http, system.tokens)
    if os.environ.get("PERMISSIONS_WRITE"):
        TABLE.write_text(_render(seen), encoding="utf-8")
    table = _parse(TABLE.read_text(encoding="utf-8"))
    assert sorted(table) == sorted(seen), "docs/permissions.md and the API list other operations"
    differences = {k: (table[k], v) for k, v in seen.items() if table[k] != v}
    assert differences == {}
    assert TABLE.read_text(encoding="utf-8") == _render(seen)  # the ownership notes too
    # the grants issue 13 found are refused
    staff_but_technicians = [Role.trainer, Role.developer, Role.product_manager]
    staff_but_technicians.append(Role.project_manager)
    for key in (
        "GET /api/v1/mail/messages/{mail_id}",
        "POST /api/v1/dossiers/{dossier_id}/notes",
    ):
        for role in staff_but_technicians:
            assert seen[key][CALLERS.index(role)] == REFUSED, (key, role)


async def test_two_organisations_never_see_each_other(
    http: httpx.AsyncClient, system, pool: asyncpg.Pool
) -> None:
    other_org = await directory.create_organisation(pool, "Autre SARL", ["autre-sarl.example"])
    user = await directory.create_user(
        pool, "bob@autre-sarl.example", "Bob Autre", Role.customer, other_org
    )
    other = auth(await directory.issue_token(pool, user, "test"))
    mine = auth(system.tokens[Role.customer])
    r = await http.post("/api/v1/requests", json=deposit_body(subject="Chez Dupont"), headers=mine)
    assert r.status_code == 201, r.text
    dossier_id = r.json()["id"]
    assert (await http.get(f"/api/v1/dossiers/{dossier_id}", headers=mine)).status_code == 200
    assert (await http.get(f"/api/v1/dossiers/{dossier_id}", headers=other)).status_code == 404
    listed = (await http.get("/api/v1/dossiers", headers=other)).json()["items"]
    assert dossier_id not in [d["id"] for d in listed]
    wrote = await http.post(
        f"/api/v1/dossiers/{dossier_id}/responses", headers=other, json={"text": "Intrus"}
    )
    assert wrote.status_code in (403, 404), wrote.text

    # an anonymous deposit naming Dupont's organisation does not land there (issue 13)
    dupont = await directory.customer_organisation(pool, "claire.martin@dupont-sa.fr")
    anonymous = await http.post(
        "/api/v1/requests",
        json=deposit_body(
            requester={"email": "intrus@ailleurs.example", "name": "Intrus"},
            organisation=str(dupont),
            subject="Déposé au nom d'une autre organisation",
        ),
    )
    assert anonymous.status_code == 201, anonymous.text
    owner = await pool.fetchrow(
        "SELECT organisation_id FROM intake.requests WHERE id = $1",
        uuid.UUID(anonymous.json()["id"]),
    )
    assert owner["organisation_id"] is None
    seen = await http.get(f"/api/v1/dossiers/{anonymous.json()['id']}", headers=mine)
    assert seen.status_code == 404
    # a known customer's address gives their organisation, whoever typed it
    known = await http.post(
        "/api/v1/requests", json=deposit_body(organisation=str(other_org), subject="Connu")
    )
    row = await pool.fetchrow(
        "SELECT organisation_id FROM intake.requests WHERE id = $1", uuid.UUID(known.json()["id"])
    )
    assert row["organisation_id"] == dupont
