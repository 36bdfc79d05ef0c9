"""Demo data for a first look: one client organisation, one user per role, two softwares;
each part adds its own on top (its `demo` hook, assistance/parts.py)."""

from __future__ import annotations

from collections.abc import Iterable
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


async def load(pool: asyncpg.Pool, hooks: Iterable[DemoHook] = ()) -> list[tuple[str, Role, str]]:
    """Create (or refresh) the demo directory, then run the parts' demo hooks in the same
    transaction; returns (email, role, fresh token) per user."""
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
            tokens.append((email, role, await directory.issue_token(conn, user, "demo")))
        for hook in hooks:
            await hook(conn, users, [code for code, _, _ in SOFTWARES])
    return tokens
