"""Demo data for a first look: one client organisation, one user per role, two softwares."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import asyncpg

from assistance import directory
from assistance.directory import Role

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
    pool: asyncpg.Pool, data_dir: Path | None = None, *, trainer_softwares: bool = True
) -> list[tuple[str, Role, str]]:
    """Create (or refresh) the demo directory; returns (email, role, token) per user.

    With `data_dir`, the tokens are kept in `data_dir/demo-tokens.json` and reused while they
    still sign their user in, so a restart prints the same tokens (none piles up). The demo
    trainer teaches every demo software unless `trainer_softwares` is false (tests that declare
    their own trainers)."""
    kept = _read_tokens(data_dir)
    tokens: list[tuple[str, Role, str]] = []
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
            token = kept.get(email)
            principal = await directory.authenticate(conn, token) if token else None
            if principal is None or principal.user_id != user:
                token = await directory.issue_token(conn, user, "demo")
            assert token is not None
            tokens.append((email, role, token))
            if role is not Role.trainer or trainer_softwares:
                await _role_setup(conn, role, user, email, full_name)
    _write_tokens(data_dir, tokens)
    return tokens


async def _role_setup(
    conn: asyncpg.Connection, role: Role, user: uuid.UUID, email: str, full_name: str
) -> None:
    codes = [code for code, _, _ in SOFTWARES]
    if role is Role.product_manager:  # R9: the demo product manager owns both softwares
        from services.evolutions.backlog import assign_product_manager

        for code in codes:
            await assign_product_manager(conn, code, user)
    elif role is Role.trainer:  # R7: a trainer for each software, so bookings find one
        from services.training.repo import save_trainer

        await save_trainer(conn, user, full_name, email, codes, True)


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
