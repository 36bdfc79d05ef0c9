"""`assistance`: run the whole system or one part, manage users and tokens.

assistance dev                        everything on one machine, embedded default (make run)
assistance cluster                    the production shape on one machine (make cluster)
assistance run --target intake        one part, against existing Temporal/NATS/PostgreSQL
assistance migrate                    apply database migrations
assistance user create --email ... --name ... --role technician [--organisation NAME]
assistance token issue --email ...    a new API token for an existing user
assistance demo                       load the demo data, print its tokens (kept under data/)

Without DATABASE_URL, the commands that use the database use the one `make run` started
(data/dev-state.json, written by `assistance dev`), or refuse.
assistance rebuild [--dossier ID]     rebuild the dossier read model (one or all) from the events
assistance simulate [--weeks 4 --per-day 100 --technicians 4 …]
                                      simulated weeks of the centre on Temporal's time-skipping
                                      server: the commitments per week and kind, HTML report
                                      (no database needed; `--find-staffing`: the smallest team)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import os
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path

import asyncpg
import uvicorn
import uvloop
from fastapi import APIRouter

from assistance import db, directory, shutdown
from assistance.bus import Bus
from assistance.directory import Role
from assistance.settings import Settings
from assistance.text import LINE_MESSAGE, is_clean_line
from composition.app import create_app, load_demo, migrate
from composition.parts import SERVICES, TARGETS
from simulation.options import add_arguments as simulation_arguments


def _serve(
    settings: Settings, targets: list[str], routers: Iterable[APIRouter] = ()
) -> uvicorn.Server:
    """The process's server: a graceful stop on SIGTERM (assistance/shutdown.py)."""
    app = create_app(settings, targets)
    for extra in routers:
        app.include_router(extra)
    return shutdown.server(app, settings)


async def _run(settings: Settings, targets: list[str]) -> None:
    problem = settings.unsafe_for_production()
    if problem:
        sys.exit(f"Refus de démarrer / refusing to start (ENVIRONMENT=production) : {problem}")
    if not settings.database_url:
        sys.exit("DATABASE_URL is required for `assistance run` (use `assistance dev` locally).")
    await _serve(settings, targets).serve()


async def _user_create(settings: Settings, args: argparse.Namespace) -> None:
    pool = await db.create_pool(settings.database_url, 2)
    try:
        org = None
        if args.organisation:
            org = await directory.create_organisation(pool, args.organisation, args.domain or [])
        user = await directory.create_user(pool, args.email, args.name, Role(args.role), org)
        print(f"user {args.email} ({args.role}) id={user}")
        if args.token:
            print(f"token: {await directory.issue_token(pool, user, 'cli')}")
    finally:
        await pool.close()


async def _token_issue(settings: Settings, args: argparse.Namespace) -> None:
    pool = await db.create_pool(settings.database_url, 2)
    try:
        user = await pool.fetchval(
            "SELECT id FROM directory.users WHERE email = lower($1)", args.email
        )
        if user is None:
            sys.exit(f"no user with e-mail {args.email}")
        print(await directory.issue_token(pool, user, args.label))
    finally:
        await pool.close()


async def _token_revoke_all(settings: Settings, args: argparse.Namespace) -> None:
    """Every token of the user revoked; their site sessions end with them (issue 13)."""
    pool = await db.create_pool(settings.database_url, 2)
    try:
        found = await directory.principal_by_email(pool, args.email)
        if found is None or found.user_id is None:
            sys.exit(f"no user with e-mail {args.email}")
        print(f"{await directory.revoke_user_tokens(pool, found.user_id)} token(s) revoked")
    finally:
        await pool.close()


def _line(value: str) -> str:
    """The text policy at the command line too (issue 11): one line, no control character."""
    if not is_clean_line(value):
        raise argparse.ArgumentTypeError(LINE_MESSAGE)
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="assistance", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="run everything on the embedded default (make run)")
    sub.add_parser(
        "cluster",
        help="the production shape on one machine: 3 NATS nodes, 2 replicas of each part, "
        "2 workers, HAProxy (make cluster)",
    )
    run = sub.add_parser("run", help="run one part, or all, against existing servers")
    run.add_argument("--target", action="append", choices=["all", *TARGETS], default=None)
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("demo", help="load the demo directory and print its tokens")
    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    create = user.add_parser("create")
    create.add_argument("--email", required=True, type=_line)
    create.add_argument("--name", required=True, type=_line)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--organisation", type=_line, help="organisation name (created if new)")
    create.add_argument("--domain", action="append", type=_line, help="organisation mail domain")
    create.add_argument("--token", action="store_true", help="also issue an API token")
    token = sub.add_parser("token", help="manage tokens").add_subparsers(
        dest="action", required=True
    )
    issue = token.add_parser("issue")
    issue.add_argument("--email", required=True)
    issue.add_argument("--label", default="cli", type=_line)
    revoke_all = token.add_parser(
        "revoke-all", help="revoke every token and site session of a user"
    )
    revoke_all.add_argument("--email", required=True)
    rebuild = sub.add_parser("rebuild", help="rebuild the dossier read model from the events")
    rebuild.add_argument("--dossier", type=uuid.UUID, help="only this dossier (its id)")
    simulate = sub.add_parser(
        "simulate",
        help="simulated weeks of the centre: do the commitments hold with this team?",
    )
    simulation_arguments(simulate)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "simulate":
        # loaded only here: the test server's wheel is in the `[local]` extra, like the dev stack
        from simulation.command import run_and_exit

        run_and_exit(args)
    settings = Settings()
    if args.command not in ("dev", "run", "cluster"):
        settings = with_dev_database(settings)
    if args.command == "dev":
        # the local stack (deploy/local/, the `[local]` extra) is loaded only here: the
        # production image has neither it nor the servers' binaries
        try:
            from deploy.local.dev import run_dev
        except ImportError as exc:
            sys.exit(
                f"`assistance dev` needs the local stack (deploy/local/, the [local] extra): {exc}"
            )

        coro = run_dev(
            settings,
            list(SERVICES),
            functools.partial(_prepare, data_dir=settings.data_dir.resolve()),
        )
    elif args.command == "cluster":
        try:
            from deploy.local.cluster import CLUSTER_DIR, run_cluster
        except ImportError as exc:
            sys.exit(
                "`assistance cluster` needs the local stack (deploy/local/, the [local] extra): "
                f"{exc}"
            )

        coro = run_cluster(
            settings,
            list(SERVICES),
            functools.partial(_prepare, data_dir=settings.data_dir.resolve() / CLUSTER_DIR),
        )
    elif args.command == "run":
        # uvloop where nothing is started under another account (the embedded PostgreSQL)
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        coro = _run(settings, args.target or ["all"])
    elif args.command == "migrate":
        coro = _migrate(settings)
    elif args.command == "demo":
        coro = _demo(settings)
    elif args.command == "user":
        coro = _user_create(settings, args)
    elif args.command == "rebuild":
        coro = _rebuild(settings, args.dossier)
    elif args.action == "revoke-all":
        coro = _token_revoke_all(settings, args)
    else:
        coro = _token_issue(settings, args)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(coro)
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InvalidCatalogNameError) as error:
        if args.command in ("dev", "run", "cluster"):
            raise
        sys.exit(
            f"La base de données ne répond pas ({error}) : `make run` tourne-t-il encore ? "
            "Sinon donnez DATABASE_URL."
        )


STATE_FILE = "dev-state.json"  # written under the data directory by `assistance dev`
NO_DATABASE = (
    "Aucune base de données : lancez d'abord `make run` (ces commandes utilisent alors sa base) "
    "ou donnez DATABASE_URL."
)


def with_dev_database(settings: Settings) -> Settings:
    """The settings, with the database (and NATS) of `make run` when DATABASE_URL is not set;
    exits with a French message when there is neither."""
    if settings.database_url:
        return settings
    try:
        state = json.loads((Path(settings.data_dir) / STATE_FILE).read_text())
        update = {"database_url": str(state["database_url"]), "nats_url": str(state["nats_url"])}
    except (OSError, ValueError, KeyError, TypeError):
        sys.exit(NO_DATABASE)
    return settings.model_copy(update=update)


async def _migrate(settings: Settings) -> None:
    for name in await migrate(settings.database_url):
        print(f"applied {name}")


async def _prepare(database_url: str, data_dir: Path) -> list[tuple[str, Role, str]]:
    """Before `assistance dev` starts the parts: the migrations, then the demo data (its
    tokens kept under the data directory: the same at every start)."""
    await migrate(database_url)
    pool = await db.create_pool(database_url, 2)
    try:
        return await load_demo(pool, data_dir)
    finally:
        await pool.close()


async def _rebuild(settings: Settings, dossier: uuid.UUID | None) -> None:
    from services.dossier.rebuild import rebuild

    pool = await db.create_pool(settings.database_url, 2)
    bus = Bus(settings.nats_url, name="assistance-rebuild")
    try:
        await bus.connect(timeout=30)
        done = await rebuild(pool, bus, dossier)
    finally:
        await bus.close()
        await pool.close()
    print(
        f"{done.dossiers} dossier(s) rebuilt from {done.events} event(s)"
        + (f", {done.skipped} skipped" if done.skipped else "")
    )


async def _demo(settings: Settings) -> None:
    pool = await db.create_pool(settings.database_url, 2)
    try:
        for email, role, token in await load_demo(pool, settings.data_dir.resolve()):
            print(f"{role.value:<16} {email:<28} {token}")
    finally:
        await pool.close()
