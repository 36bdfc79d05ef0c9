"""Demo data for a first look: one client organisation, one user per role, two softwares;
each part adds its own on top (its `demo` hook, assistance/parts.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from uuid import UUID

import asyncpg

from assistance import directory
from assistance.directory import Role
from assistance.parts import DemoHook

ORGANISATION = ("Dupont SA", ["dupont-sa.fr"], "Cabinet comptable de 40 personnes, 3 sites.")
USERS = [
    ("claire.martin@dupont-sa.fr", "Claire Martin", Role.customer),
    ("tech@manao.eu", "Thomas Technicien", Role.technician),
    ("formation@manao.eu", "Fanny Formatrice", Role.trainer),
    ("dev@manao.eu", "David Développeur", Role.developer),
    ("produit@manao.eu", "Pauline Produit", Role.product_manager),
    ("projet@manao.eu", "Pierre Projet", Role.project_manager),
    ("admin@manao.eu", "Alice Admin", Role.admin),
]
SOFTWARES = [("manao-compta", "Manao Compta", "5.2"), ("manao-paie", "Manao Paie", "3.1")]
TOKENS_FILE = "demo-tokens.json"  # under the data directory: the same tokens at every start


async def load(
    pool: asyncpg.Pool, hooks: Iterable[DemoHook] = (), data_dir: Path | None = None
) -> list[tuple[str, Role, str]]:
    """Create (or refresh) the demo directory, then run the parts' demo hooks in the same
    transaction; returns (email, role, token) per user.

    With `data_dir`, the tokens are kept in `data_dir/demo-tokens.json` and reused while they
    still sign their user in, so a restart prints the same tokens (none piles up)."""
    kept = _read_tokens(data_dir)
    tokens: list[tuple[str, Role, str]] = []
    users: dict[Role, UUID] = {}
    async with pool.acquire() as conn, conn.transaction():
        name, domains, context = ORGANISATION
        org = await directory.create_organisation(conn, name, domains, context)
        for code, label, version in SOFTWARES:
            await directory.add_software(conn, code, label)
            await directory.add_software_version(conn, code, version)
        for email, full_name, role in USERS:
            user = await directory.create_user(
                conn, email, full_name, role, org if role is Role.customer else None
            )
            users[role] = user
            token = kept.get(email)
            principal = await directory.authenticate(conn, token) if token else None
            if token is None or principal is None or principal.user_id != user:
                token = await directory.issue_token(conn, user, "demo")
            tokens.append((email, role, token))
        for hook in hooks:
            await hook(conn, users, [code for code, _, _ in SOFTWARES])
    _write_tokens(data_dir, tokens)
    return tokens


def _read_tokens(data_dir: Path | None) -> dict[str, str]:
    if data_dir is None:
        return {}
    try:
        stored = json.loads((data_dir / TOKENS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in stored.items()} if isinstance(stored, dict) else {}


def _write_tokens(data_dir: Path | None, tokens: list[tuple[str, Role, str]]) -> None:
    if data_dir is None:
        return
    path = data_dir / TOKENS_FILE
    path.touch(mode=0o600)
    os.chmod(path, 0o600)
    path.write_text(json.dumps({email: token for email, _, token in tokens}, indent=2) + "\n")
