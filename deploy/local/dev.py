"""`assistance dev` (`make run`): everything on one machine, on the embedded default.

This process starts Temporal, NATS, PostgreSQL and the mail catcher (deploy/local/stack.py),
then the services and the Temporal worker as two child processes running `assistance run`,
and supervises all of them (deploy/local/supervisor.py). It knows no part: the composition
passes the service targets and what to do once the database is up (migrations, demo data).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable

import uvicorn
from fastapi import FastAPI

from assistance import headers
from assistance.directory import Role
from assistance.settings import Settings
from deploy.local import devmail
from deploy.local.stack import LocalStack, StackConfig, free_port
from deploy.local.supervisor import Child, Supervisor

# Given the database URL: apply the migrations, load the demo data, return the demo tokens.
Prepare = Callable[[str], Awaitable[list[tuple[str, Role, str]]]]


async def run_dev(settings: Settings, services: list[str], prepare: Prepare) -> None:
    """Everything on one machine, supervised: this process starts Temporal, NATS, PostgreSQL
    and the mail catcher, runs `prepare` (migrations and demo data, from the composition),
    then the `services` and the worker as two child processes (the same code as
    `assistance run`), and restarts whichever dies (deploy/local/supervisor.py)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(
        StackConfig(
            data_dir=settings.data_dir.resolve(),
            database_url=settings.database_url or None,
            persistent=True,
            temporal_port=env_port("TEMPORAL_PORT"),
            temporal_ui_port=env_port("TEMPORAL_UI_PORT"),
            nats_port=env_port("NATS_PORT"),
            smtp_port=env_port("MAIL_CATCHER_PORT"),
        )
    )
    print("▸ Démarrage des composants (Temporal, NATS JetStream, PostgreSQL, mail)…", flush=True)
    ends = await stack.start()
    supervisor = Supervisor(say=lambda line: print(line, flush=True))
    parts: list[Child] = []
    pages_server: uvicorn.Server | None = None
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
        tokens = await prepare(settings.database_url)
        _write_state(settings)
        # The services and the Temporal worker run as two processes: workflow code is
        # CPU-bound and must not slow the HTTP answers down (`assistance run --target …`).
        data = settings.data_dir.resolve()
        every_service = Child(
            "services",
            services,
            data / "services.log",
            _child_env(settings, serves_http=True),
            settings.http_port,
        )
        worker = Child(
            "worker", ["worker"], data / "worker.log", _child_env(settings, False), free_port()
        )
        parts = [every_service, worker]
        await asyncio.gather(*(part.start() for part in parts))
        supervisor.watch("Temporal", stack.start_temporal, lambda: stack.running("temporal"))
        supervisor.watch("NATS", stack.start_nats, lambda: stack.running("nats"))
        if not settings_database_given():
            supervisor.watch("PostgreSQL", stack.start_postgres, lambda: stack.running("postgres"))
        supervisor.watch("Mail catcher", stack.start_mail, lambda: stack.running("mail"))
        for part in parts:
            supervisor.watch(part.name, part.start, part.alive)
        mail_port = env_port("MAIL_PAGES_PORT") or free_port()
        # the caught mails' pages only with the explicit dev setting (`make run` sets it)
        if settings.dev_pages:
            pages_server = mail_pages(stack, settings.http_host, mail_port)
        pages = asyncio.create_task(
            pages_server.serve() if pages_server else asyncio.Event().wait()
        )
        base = f"http://{settings.http_host}:{settings.http_port}"
        mails = f"http://{settings.http_host}:{mail_port}/dev/mails"
        if pages_server is None:
            mails = "(pages locales : DEV_PAGES=1)"
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
            f"  Métriques      {base}/metrics, "
            f"http://{settings.http_host}:{worker.http_port}/metrics (worker)\n"
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
        if pages_server is not None:
            pages_server.should_exit = True
        for part in parts:
            await part.stop()
        await stack.stop()
        with contextlib.suppress(OSError):
            (settings.data_dir / STATE_FILE).unlink()


STATE_FILE = "dev-state.json"  # under the data directory while `assistance dev` runs


def _write_state(settings: Settings) -> None:
    """Where the running `assistance dev` is, for the other commands (composition/cli.py)."""
    state = {"database_url": settings.database_url, "nats_url": settings.nats_url}
    (settings.data_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def settings_database_given() -> bool:
    return bool(os.environ.get("DATABASE_URL"))


def mail_pages(stack: LocalStack, host: str, port: int) -> uvicorn.Server:
    """The caught mails' pages, served by this process (the catcher lives here); `make
    cluster` serves them the same way."""
    app = FastAPI(title="Mails envoyés", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(devmail.router(stack.mail))
    headers.install(app, {**headers.HEADERS, "Content-Security-Policy": devmail.CSP})
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


def env_port(name: str) -> int | None:
    """A port given in the environment (`TEMPORAL_PORT`, …), else None: a free one."""
    value = os.environ.get(name)
    return int(value) if value else None
