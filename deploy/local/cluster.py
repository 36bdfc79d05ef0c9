"""`assistance cluster` (`make cluster`): the production shape, on one machine.

The same components as production (deploy/k8s/), each a real process on its own free port:
- NATS JetStream: three nodes clustered by routes, file storage, the streams at 3 replicas
  (`NATS_REPLICAS=3`: each part creates them so at start);
- PostgreSQL: embedded as `make run` has it, or `DATABASE_URL`;
- Temporal: the dev server (one process: a Temporal cluster is not something to start here);
- two replicas of every part (`assistance run --target <part>`) and two workers;
- HAProxy, routing the public paths as the Ingress does (deploy/local/proxy.py), and the mail
  to intake's replicas.

Everything is supervised as `make run` is (deploy/local/supervisor.py): what dies is restarted
on its port and data, as Kubernetes restarts a pod. The cluster test
(`tests/cluster/test_cluster.py`) drives this same class.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from assistance.directory import Role
from assistance.settings import Settings
from deploy.local.dev import env_port, mail_pages
from deploy.local.proxy import Proxy, Replica, haproxy_executable, ingress_routes
from deploy.local.stack import (
    HOST,
    Endpoints,
    LocalStack,
    StackConfig,
    StackError,
    free_port,
    steady_port,
)
from deploy.local.supervisor import Child, Supervisor

NATS_NODES = 3
WORKER = "worker"
CLUSTER_DIR = "cluster"  # under DATA_DIR: `make cluster` keeps its data apart from `make run`'s
# Given the database URL: apply the migrations, load the demo data, return the demo tokens.
Prepare = Callable[[str], Awaitable[list[tuple[str, Role, str]]]]


@dataclass
class ClusterConfig:
    data_dir: Path
    # None: an embedded PostgreSQL under data_dir
    database_url: str | None = None
    persistent: bool = True
    # the proxy's public HTTP port and its SMTP port (None: free ports; mail 0: no SMTP)
    http_port: int | None = None
    mail_port: int | None = None
    replicas: int = 2
    workers: int = 2
    # more settings for every part (the tests' shorter polls and leases)
    env: dict[str, str] = field(default_factory=dict)
    ui: bool = True
    temporal_port: int | None = None
    temporal_ui_port: int | None = None
    smtp_port: int | None = None  # the mail catcher's


class Cluster:
    """Starts, supervises and stops the cluster shape; `parts` names every process by
    `<part>-<n>` (`intake-1`, `worker-2`)."""

    def __init__(
        self,
        config: ClusterConfig,
        services: Sequence[str],
        progress: Callable[[str], None] = print,
    ) -> None:
        self.config = config
        self.services = list(services)
        self.progress = progress
        self.data_dir = config.data_dir.expanduser().resolve()
        self.stack = LocalStack(
            StackConfig(
                data_dir=self.data_dir,
                database_url=config.database_url,
                persistent=config.persistent,
                temporal_port=config.temporal_port,
                temporal_ui_port=config.temporal_ui_port,
                smtp_port=config.smtp_port,
                ui=config.ui,
                nats_nodes=NATS_NODES,
                # what a process binds again when it is restarted stays free meanwhile
                pick_port=steady_port,
            ),
            progress,
        )
        self.http_port = config.http_port or steady_port()
        self.mail_port = steady_port() if config.mail_port is None else config.mail_port
        self.parts: dict[str, Child] = {}
        self.replicas: dict[str, list[Replica]] = {}
        self.proxy: Proxy | None = None
        self.supervisor = Supervisor(say=progress)
        self.tokens: list[tuple[str, Role, str]] = []  # the demo tokens, once started

    @property
    def url(self) -> str:
        """Where the cluster serves: the proxy."""
        return f"http://{HOST}:{self.http_port}"

    @property
    def endpoints(self) -> Endpoints:
        return self.stack.endpoints

    def part(self, name: str) -> Child:
        return self.parts[name]

    async def start(self, prepare: Prepare) -> list[tuple[str, Role, str]]:
        """Start everything, then supervise it (until `stop`); the demo tokens."""
        haproxy_executable()  # before anything starts: say at once that it is missing
        routes = ingress_routes()
        missing = sorted({route.part for route in routes} - set(self.services))
        if missing:
            raise StackError(f"the Ingress routes to parts not run here: {', '.join(missing)}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            ends = await self.stack.start()
            self.progress("▸ Migrations de la base et données de démonstration…")
            self.tokens = await prepare(ends.database_url)
            await self._start_parts(ends)
            self.proxy = Proxy(
                self.data_dir,
                self.http_port,
                self.replicas,
                self.mail_port or None,
                routes,
                stats_port=steady_port(),
            )
            started = time.monotonic()
            await self.proxy.start()
            await self.proxy.all_up()  # every replica ready (/readyz), as HAProxy checks it
            self.progress(
                f"▸ HAProxy prêt sur {self.proxy.url}, toutes les répliques prêtes, "
                f"en {time.monotonic() - started:.1f} s"
            )
        except BaseException:
            await self.stop()
            raise
        self._watch()
        self.supervisor.start()
        return self.tokens

    async def _start_parts(self, ends: Endpoints) -> None:
        env = self._env(ends)
        for service in self.services:
            for n in range(1, self.config.replicas + 1):
                mail = steady_port() if service == "intake" and self.mail_port else None
                replica = Replica(f"{service}-{n}", steady_port(), mail)
                self.replicas.setdefault(service, []).append(replica)
                own = {**env, "MAIL_LISTEN_PORT": str(mail or 0)}
                self.parts[replica.name] = Child(
                    replica.name,
                    [service],
                    self.data_dir / f"{replica.name}.log",
                    own,
                    replica.http_port,
                )
        for n in range(1, self.config.workers + 1):
            name = f"{WORKER}-{n}"
            self.parts[name] = Child(
                name, [WORKER], self.data_dir / f"{name}.log", env, steady_port()
            )
        self.progress(
            f"▸ Démarrage de {len(self.parts)} processus : {self.config.replicas} répliques de "
            f"chaque partie, {self.config.workers} workers…"
        )
        outcomes = await asyncio.gather(
            *(self._start_part(part) for part in self.parts.values()), return_exceptions=True
        )
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failures:
            raise failures[0]

    async def _start_part(self, part: Child) -> None:
        started = time.monotonic()
        await part.start()
        self.progress(
            f"▸ {part.name} prêt sur {HOST}:{part.http_port} en {time.monotonic() - started:.1f} s"
        )

    def _env(self, ends: Endpoints) -> dict[str, str]:
        """Every part's settings: the servers, the proxy as the public address (and as the
        site's way to the APIs, as the Ingress is in production), the streams at 3 replicas."""
        return {
            **os.environ,
            "DATABASE_URL": ends.database_url,
            # 2 × 7 parts and 2 workers on one PostgreSQL (decision 0025)
            "DATABASE_POOL_SIZE": os.environ.get("DATABASE_POOL_SIZE", "8"),
            "TEMPORAL_ADDRESS": ends.temporal_address,
            "NATS_URL": ends.nats_url,
            "NATS_REPLICAS": str(NATS_NODES),
            "SMTP_HOST": ends.smtp_host,
            "SMTP_PORT": str(ends.smtp_port),
            "HTTP_HOST": HOST,
            "PUBLIC_URL": self.url,
            "SITE_API_URL": self.url,
            "MAIL_LISTEN_HOST": HOST,
            "MAIL_LISTEN_PORT": "0",  # intake's replicas get their own
            "MAIL_LMTP_PORT": "0",
            **self.config.env,
        }

    def _watch(self) -> None:
        stack, watch = self.stack, self.supervisor.watch
        watch("Temporal", stack.start_temporal, lambda: stack.running("temporal"))
        for node in stack.nats_nodes:
            watch(node, *_nats_node(stack, node))
        if not self.config.database_url:
            watch("PostgreSQL", stack.start_postgres, lambda: stack.running("postgres"))
        watch("Mail catcher", stack.start_mail, lambda: stack.running("mail"))
        for part in self.parts.values():
            watch(part.name, part.start, part.alive)
        proxy = self.proxy
        assert proxy is not None
        watch("HAProxy", proxy.start, proxy.alive)

    async def stop(self) -> None:
        """Stop watching, then the proxy (no new request), the parts (gracefully, together),
        then the servers."""
        await self.supervisor.stop()
        if self.proxy is not None:
            await self.proxy.stop()
        await asyncio.gather(*(part.stop() for part in self.parts.values()))
        await self.stack.stop()


def _nats_node(
    stack: LocalStack, node: str
) -> tuple[Callable[[], Awaitable[None]], Callable[[], bool]]:
    """How to restart one NATS node, and whether it runs."""
    return (lambda: stack.start_nats(node)), (lambda: stack.running(node))


async def run_cluster(settings: Settings, services: list[str], prepare: Prepare) -> None:
    """`make cluster`: the cluster shape under `DATA_DIR/cluster`, served by the proxy on
    `HTTP_HOST:HTTP_PORT` (mail on `MAIL_LISTEN_PORT`), until Ctrl-C."""
    data = settings.data_dir.resolve() / CLUSTER_DIR
    cluster = Cluster(
        ClusterConfig(
            data_dir=data,
            database_url=settings.database_url or None,
            http_port=settings.http_port,
            mail_port=settings.mail_listen_port,
            temporal_port=env_port("TEMPORAL_PORT"),
            temporal_ui_port=env_port("TEMPORAL_UI_PORT"),
            smtp_port=env_port("MAIL_CATCHER_PORT"),
        ),
        services,
        progress=lambda line: print(line, flush=True),
    )
    print(
        "▸ Démarrage de la forme cluster : NATS JetStream (3 nœuds), PostgreSQL, Temporal, "
        "2 répliques de chaque partie, 2 workers, HAProxy…",
        flush=True,
    )
    pages_server = None
    try:
        try:
            tokens = await cluster.start(prepare)
        except StackError as error:
            print(f"\n✗ {error}", flush=True)
            raise SystemExit(1) from None
        mail_port = env_port("MAIL_PAGES_PORT") or free_port()
        if settings.dev_pages:
            pages_server = mail_pages(cluster.stack, HOST, mail_port)
        pages = asyncio.create_task(
            pages_server.serve() if pages_server else asyncio.Event().wait()
        )
        _banner(cluster, tokens, f"http://{HOST}:{mail_port}/dev/mails" if pages_server else "")
        await pages
    finally:
        print("\n▸ Arrêt…", flush=True)
        if pages_server is not None:
            pages_server.should_exit = True
        await cluster.stop()
        print("▸ Tout est arrêté.", flush=True)


def _banner(cluster: Cluster, tokens: list[tuple[str, Role, str]], mails: str) -> None:
    ends, proxy, base = cluster.endpoints, cluster.proxy, cluster.url
    assert proxy is not None
    data = cluster.data_dir
    by_part: dict[str, list[str]] = {}
    for name, part in sorted(cluster.parts.items()):
        by_part.setdefault(name.rsplit("-", 1)[0], []).append(f"{name} :{part.http_port}")
    processes = "\n                 ".join(", ".join(names) for names in by_part.values())
    mail_in = f"smtp://{HOST}:{cluster.mail_port}" if cluster.mail_port else "(aucun)"
    print(
        f"\nCentre de service prêt, forme cluster.\n"
        f"  Site           {base}/\n"
        f"  API            {base}/api/v1   (HAProxy, routes de l'Ingress)\n"
        f"  Répartiteur    {proxy.stats_url}   (état des répliques)\n"
        f"  Mails reçus    {mail_in}   (HAProxy → intake-1, intake-2)\n"
        f"  Mails envoyés  {mails or '(pages locales : DEV_PAGES=1)'}\n"
        f"  NATS           {ends.nats_url}\n"
        f"                 (JetStream, 3 nœuds, flux à 3 répliques)\n"
        f"  Temporal       {ends.temporal_address}   UI {ends.temporal_ui_url}\n"
        f"  PostgreSQL     {ends.database_url}\n"
        f"  Processus      {processes}\n"
        f"  Journaux       {data}/<processus>.log, haproxy.log, nats-1.log…, temporal.log\n"
        f"\nJetons de démonstration (Authorization: Bearer …):",
        flush=True,
    )
    for email, role, token in tokens:
        print(f"  {role.value:<16} {email:<28} {token}")
    print("\nUn processus qui s'arrête est redémarré. Ctrl-C pour arrêter.", flush=True)
