"""A real reverse proxy in front of the parts' replicas (`make cluster`): HAProxy, from Debian's
packages (`apt-get install haproxy`; nothing is downloaded at run time).

It routes the public paths as the Kubernetes Ingress does: the routes are read from
`deploy/k8s/ingress.yaml` itself (path prefixes, `pathType: Prefix`, the longest one wins),
so the two cannot drift. Each part is a backend of its replicas, checked on `/readyz` every
second as the pods' readiness probes are: a replica that is stopping, dead or missing a
dependency leaves the rotation, and a request whose connection is refused is sent to the
other replica. Mail (SMTP) goes to intake's replicas as the `assistance-intake-mail` Service
does. A page of the backends' states is served on its own port (`/stats`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from deploy.local.stack import HOST, StackError, free_port, start_process, stop_process

INGRESS = Path(__file__).resolve().parent.parent / "k8s" / "ingress.yaml"
SERVICE_PREFIX = "assistance-"  # the Ingress names `assistance-<part>` Services
HARD_STOP_S = 5  # a soft stop (SIGUSR1) lets connections in flight end, this long at most
NOT_INSTALLED = (
    "HAProxy est introuvable : installez-le (apt-get install haproxy). "
    "/ HAProxy not found: install it (apt-get install haproxy)."
)


@dataclass(frozen=True)
class Route:
    """A public path prefix and the part serving it."""

    prefix: str
    part: str


@dataclass(frozen=True)
class Replica:
    """One process of a part: its name, its HTTP port, and its SMTP port (intake's)."""

    name: str
    http_port: int
    mail_port: int | None = None


def ingress_routes(path: Path = INGRESS) -> list[Route]:
    """The Ingress's routes, in its order: (path prefix, part)."""
    with path.open(encoding="utf-8") as text:
        documents = [doc for doc in yaml.safe_load_all(text) if doc]
    ingress = next(doc for doc in documents if doc.get("kind") == "Ingress")
    routes = []
    for rule in ingress["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            if entry["pathType"] != "Prefix":
                raise StackError(f"{path}: only pathType Prefix is routed ({entry['path']})")
            service = entry["backend"]["service"]["name"]
            routes.append(Route(entry["path"], service.removeprefix(SERVICE_PREFIX)))
    return routes


def haproxy_executable() -> str:
    """`haproxy` on PATH or in /usr/sbin (Debian's place, often off a user's PATH)."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = shutil.which("haproxy", path=search)
    if found is None:
        raise StackError(NOT_INSTALLED)
    return found


def _acl(prefix: str) -> str:
    """Kubernetes' Prefix match: the path itself, or below it by whole segments."""
    if prefix == "/":
        return "TRUE"
    return f"{{ path {prefix} }} || {{ path_beg {prefix.rstrip('/')}/ }}"


def haproxy_config(
    *,
    http_port: int,
    stats_port: int,
    routes: Sequence[Route],
    replicas: dict[str, list[Replica]],
    mail_port: int | None = None,
    host: str = HOST,
) -> str:
    """HAProxy's configuration: the public frontend routing `routes` to each part's
    `replicas`, the SMTP frontend (on `mail_port`) to intake's, the stats page."""
    missing = sorted({route.part for route in routes} - set(replicas))
    if missing:
        raise StackError(f"no replica of {', '.join(missing)}, which the Ingress routes to")
    lines = [
        "global",
        "    log stdout format raw local0 info",
        "    maxconn 4096",
        f"    hard-stop-after {HARD_STOP_S}s",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option dontlognull",
        # a refused connection (a replica just killed, not yet seen by the checks) is tried
        # again, on the other replica; a request already sent is never sent twice
        "    option redispatch 1",
        "    retries 3",
        "    timeout connect 2s",
        "    timeout client 65s",
        "    timeout server 65s",
        "    timeout http-request 30s",
        "    default-server check inter 1s fall 2 rise 2",
        "",
        "frontend public",
        f"    bind {host}:{http_port}",
        "    option httplog",
        "    option forwardfor",
        # one request per connection to a replica: never a request sent on a connection the
        # replica is closing (uvicorn's keep-alive), which would come back as a 502
        "    option http-server-close",
    ]
    default = None
    for route in sorted(routes, key=lambda r: len(r.prefix), reverse=True):
        if route.prefix == "/":
            default = route.part
        else:
            lines.append(f"    use_backend {route.part} if {_acl(route.prefix)}")
    if default is not None:
        lines.append(f"    default_backend {default}")
    for part in sorted({route.part for route in routes}):
        lines += [
            "",
            f"backend {part}",
            "    option httpchk",
            "    http-check send meth GET uri /readyz",
            "    http-check expect status 200",
        ]
        lines += [f"    server {r.name} {host}:{r.http_port}" for r in replicas[part]]
    receivers = [r for r in replicas.get("intake", []) if r.mail_port]
    if mail_port and receivers:
        lines += [
            "",
            "frontend smtp",
            "    mode tcp",
            "    option tcplog",
            f"    bind {host}:{mail_port}",
            "    timeout client 10m",
            "    default_backend intake-mail",
            "",
            "backend intake-mail",
            "    mode tcp",
            "    timeout server 10m",
            # checked as the HTTP backends are, on the replica's /readyz
            "    option httpchk",
            "    http-check send meth GET uri /readyz",
            "    http-check expect status 200",
        ]
        lines += [f"    server {r.name} {host}:{r.mail_port} port {r.http_port}" for r in receivers]
    lines += [
        "",
        "frontend stats",
        f"    bind {host}:{stats_port}",
        "    monitor-uri /healthz",
        "    stats enable",
        "    stats uri /stats",
        "    stats refresh 2s",
        "",
    ]
    return "\n".join(lines)


class Proxy:
    """HAProxy as a child process: started (once its configuration is checked), restarted,
    stopped softly (SIGUSR1: connections in flight end, HARD_STOP_S at most)."""

    def __init__(
        self,
        data_dir: Path,
        http_port: int,
        replicas: dict[str, list[Replica]],
        mail_port: int | None = None,
        routes: Sequence[Route] | None = None,
        stats_port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.http_port = http_port
        self.mail_port = mail_port
        self.stats_port = stats_port or free_port()
        self.config_path = data_dir / "haproxy.cfg"
        self.log = data_dir / "haproxy.log"
        self.config = haproxy_config(
            http_port=http_port,
            stats_port=self.stats_port,
            routes=ingress_routes() if routes is None else routes,
            replicas=replicas,
            mail_port=mail_port,
        )
        self.child: Any = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def stats_url(self) -> str:
        return f"http://{HOST}:{self.stats_port}/stats"

    async def start(self) -> None:
        await self.stop()
        executable = haproxy_executable()
        self.config_path.write_text(self.config)
        check = await asyncio.create_subprocess_exec(
            executable, "-c", "-q", "-f", str(self.config_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await check.communicate()
        if check.returncode != 0:
            raise StackError(f"{self.config_path} refused by HAProxy:\n{out.decode()}")
        self.child = await start_process(
            "HAProxy",
            [executable, "-db", "-f", str(self.config_path)],
            self.log,
            dict(os.environ),
            stop_signal=signal.SIGUSR1,
            ready=self._answers,
            errors=(OSError, httpx.HTTPError),
        )

    async def _answers(self) -> None:
        async with httpx.AsyncClient(trust_env=False) as http:
            url = f"http://{HOST}:{self.stats_port}/healthz"
            (await http.get(url, timeout=2.0)).raise_for_status()
        _, writer = await asyncio.open_connection(HOST, self.http_port)
        writer.close()
        await writer.wait_closed()

    def alive(self) -> bool:
        return self.child is not None and bool(self.child.running)

    async def stop(self) -> None:
        child, self.child = self.child, None
        if child is not None:
            await stop_process(child)

    async def all_up(self, timeout: float = 120.0) -> None:
        """Return once HAProxy sees every replica ready (its checks on /readyz pass)."""
        deadline = asyncio.get_running_loop().time() + timeout
        states: dict[str, str] = {}
        while asyncio.get_running_loop().time() < deadline:
            states = await self.states()
            if states and set(states.values()) == {"UP"}:
                return
            await asyncio.sleep(0.5)
        down = sorted(name for name, state in states.items() if state != "UP")
        raise StackError(f"replicas not ready after {timeout:.0f} s: {', '.join(down)}")

    async def states(self) -> dict[str, str]:
        """Each replica's state as HAProxy sees it (`"<backend>/<server>"`: "UP", "DOWN", …)."""
        async with httpx.AsyncClient(trust_env=False) as http:
            answer = await http.get(f"{self.stats_url};csv", timeout=5.0)
        answer.raise_for_status()
        header, *rows = answer.text.splitlines()
        names = header.lstrip("# ").split(",")
        states = {}
        for row in rows:
            fields = dict(zip(names, row.split(","), strict=False))
            if fields.get("svname") not in (None, "FRONTEND", "BACKEND"):
                states[f"{fields['pxname']}/{fields['svname']}"] = fields.get("status", "")
        return states
