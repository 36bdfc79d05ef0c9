"""`assistance`: run the whole system or one part, manage users and tokens.

assistance dev                        everything on one machine, embedded default (make run)
assistance run --target intake        one part, against existing Temporal/NATS/PostgreSQL
assistance migrate                    apply database migrations
assistance user create --email ... --name ... --role technician [--organisation NAME]
assistance token issue --email ...    a new API token for an existing user
assistance demo                       load the demo data, print its tokens (kept under data/)

Without DATABASE_URL, the commands that use the database use the one `make run` started
(data/dev-state.json), or refuse.
assistance rebuild [--dossier ID]     rebuild the dossier read model (one or all) from the events
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from fastapi import APIRouter, FastAPI

from assistance import db, demo, devmail, directory
from assistance.app import SERVICES, TARGETS, create_app
from assistance.bus import Bus
from assistance.directory import Role
from assistance.settings import Settings
from assistance.stack import LocalStack, StackConfig, free_port
from assistance.supervisor import Part, Supervisor
from assistance.text import LINE_MESSAGE, is_clean_line


def _serve(
    settings: Settings, targets: list[str], routers: Iterable[APIRouter] = ()
) -> uvicorn.Server:
    app = create_app(settings, targets)
    for extra in routers:
        app.include_router(extra)
    config = uvicorn.Config(
        app, host=settings.http_host, port=settings.http_port, log_level="warning", lifespan="on"
    )
    return uvicorn.Server(config)


async def _run(settings: Settings, targets: list[str]) -> None:
    if not settings.database_url:
        sys.exit("DATABASE_URL is required for `assistance run` (use `assistance dev` locally).")
    await _serve(settings, targets).serve()


async def _dev(settings: Settings) -> None:
    """Everything on one machine, supervised: this process starts Temporal, NATS, PostgreSQL
    and the mail catcher, then the services and the worker as two child processes (the same
    code as `assistance run`), and restarts whichever dies (assistance/supervisor.py)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(
        StackConfig(
            data_dir=settings.data_dir.resolve(),
            database_url=settings.database_url or None,
            persistent=True,
            temporal_port=_port("TEMPORAL_PORT"),
            temporal_ui_port=_port("TEMPORAL_UI_PORT"),
            nats_port=_port("NATS_PORT"),
            smtp_port=_port("MAIL_CATCHER_PORT"),
        )
    )
    print("▸ Démarrage des composants (Temporal, NATS JetStream, PostgreSQL, mail)…", flush=True)
    ends = await stack.start()
    supervisor = Supervisor(say=lambda line: print(line, flush=True))
    parts: list[Part] = []
    mail_pages: uvicorn.Server | None = None
    try:
        settings = settings.model_copy(
            update={
                "database_url": ends.database_url,
                "temporal_address": ends.temporal_address,
                "nats_url": ends.nats_url,
                "smtp_host": ends.smtp_host,
                "smtp_port": ends.smtp_port,
            }
        )
        print("▸ Migrations de la base…", flush=True)
        await db.migrate(settings.database_url)
        pool = await db.create_pool(settings.database_url, 2)
        try:
            tokens = await demo.load(pool, settings.data_dir.resolve())
        finally:
            await pool.close()
        # The services and the Temporal worker run as two processes: workflow code is
        # CPU-bound and must not slow the HTTP answers down (`assistance run --target …`).
        data = settings.data_dir.resolve()
        _write_state(settings)
        services = Part(
            "services",
            list(SERVICES),
            data / "services.log",
            _child_env(settings, serves_http=True),
            settings.http_port,
        )
        worker = Part(
            "worker", ["worker"], data / "worker.log", _child_env(settings, False), free_port()
        )
        parts = [services, worker]
        await asyncio.gather(*(part.start() for part in parts))
        supervisor.watch("Temporal", stack.start_temporal, lambda: stack.running("temporal"))
        supervisor.watch("NATS", stack.start_nats, lambda: stack.running("nats"))
        if not settings_database_given():
            supervisor.watch("PostgreSQL", stack.start_postgres, lambda: stack.running("postgres"))
        supervisor.watch("Mail catcher", stack.start_mail, lambda: stack.running("mail"))
        for part in parts:
            supervisor.watch(part.name, part.start, part.alive)
        mail_port = _port("MAIL_PAGES_PORT") or free_port()
        mail_pages = _mail_pages(stack, settings.http_host, mail_port)
        pages = asyncio.create_task(mail_pages.serve())
        base = f"http://{settings.http_host}:{settings.http_port}"
        mails = f"http://{settings.http_host}:{mail_port}/dev/mails"
        print(
            f"\nCentre de service prêt.\n"
            f"  Site           {base}/\n"
            f"  API            {base}/api/v1\n"
            f"  OpenAPI docs   {base}/docs   ({base}/openapi.json)\n"
            f"  Temporal UI    {ends.temporal_ui_url}\n"
            f"  Temporal       {ends.temporal_address}\n"
            f"  NATS           {ends.nats_url}\n"
            f"  PostgreSQL     {ends.database_url}\n"
            f"  Mail catcher   smtp://{ends.smtp_host}:{ends.smtp_port}\n"
            f"  Mails reçus    smtp://{settings.mail_listen_host}:{settings.mail_listen_port}\n"
            f"  Mails envoyés  {mails}   ({mails}.json)\n"
            f"  Journaux       {data}/services.log, {data}/worker.log, {data}/temporal.log,\n"
            f"                 {data}/nats.log, {data}/postgres.log\n"
            f"\nJetons de démonstration (Authorization: Bearer …):",
            flush=True,
        )
        for email, role, token in tokens:
            print(f"  {role.value:<16} {email:<28} {token}")
        print(
            f"\nEssai :\n  curl -s -X POST {base}/api/v1/requests"
            " -H 'Content-Type: application/json'"
            ' -d \'{"requester":{"email":"claire.martin@dupont-sa.fr","name":"Claire '
            'Martin"},"software":"manao-compta","subject":"Export FEC",'
            '"description":"L export s arrete a 50 %"}\'\n'
            "\nUn composant qui s'arrête est redémarré. Ctrl-C pour arrêter.",
            flush=True,
        )
        async with supervisor:
            await pages
    finally:
        print("\n▸ Arrêt…", flush=True)
        await supervisor.stop()  # first: nothing is restarted while everything stops
        if mail_pages is not None:
            mail_pages.should_exit = True
        for part in parts:
            await part.stop()
        await stack.stop()
        with contextlib.suppress(OSError):
            (settings.data_dir / STATE_FILE).unlink()


STATE_FILE = "dev-state.json"  # under the data directory, while `assistance dev` runs
NO_DATABASE = (
    "Aucune base de données : lancez d'abord `make run` (ces commandes utilisent alors sa base) "
    "ou donnez DATABASE_URL."
)


def _write_state(settings: Settings) -> None:
    """Where the running `assistance dev` can be reached, for the other commands."""
    state = {"database_url": settings.database_url, "nats_url": settings.nats_url}
    (settings.data_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


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


def settings_database_given() -> bool:
    return bool(os.environ.get("DATABASE_URL"))


def _mail_pages(stack: LocalStack, host: str, port: int) -> uvicorn.Server:
    """The caught mails' pages, served by this process (the catcher lives here)."""
    app = FastAPI(title="Mails envoyés", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(devmail.router(stack.mail))
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    return uvicorn.Server(config)


def _child_env(settings: Settings, serves_http: bool) -> dict[str, str]:
    """The environment of a part started as a child: the same settings; the services keep the
    mail receivers, the worker has none."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "NATS_URL": settings.nats_url,
        "SMTP_HOST": settings.smtp_host,
        "SMTP_PORT": str(settings.smtp_port),
    }
    if not serves_http:
        env.update({"MAIL_LISTEN_PORT": "0", "MAIL_LMTP_PORT": "0"})
    return env


def _port(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


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
    rebuild = sub.add_parser("rebuild", help="rebuild the dossier read model from the events")
    rebuild.add_argument("--dossier", type=uuid.UUID, help="only this dossier (its id)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = Settings()
    if args.command not in ("dev", "run"):
        settings = with_dev_database(settings)
    if args.command == "dev":
        coro = _dev(settings)
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
    else:
        coro = _token_issue(settings, args)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(coro)
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InvalidCatalogNameError) as error:
        if args.command in ("dev", "run"):
            raise
        sys.exit(
            f"La base de données ne répond pas ({error}) : `make run` tourne-t-il encore ? "
            "Sinon donnez DATABASE_URL."
        )


async def _migrate(settings: Settings) -> None:
    for name in await db.migrate(settings.database_url):
        print(f"applied {name}")


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
        for email, role, token in await demo.load(pool, settings.data_dir.resolve()):
            print(f"{role.value:<16} {email:<28} {token}")
    finally:
        await pool.close()
