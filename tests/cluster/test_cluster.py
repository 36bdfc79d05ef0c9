"""The cluster shape under fire (issue 12, item 2): `make test-cluster`, run by `.ci/run` after
`make test` (it needs HAProxy: `apt-get install haproxy`).

The cluster is `make cluster`'s (deploy/local/cluster.py): three NATS JetStream nodes with the
streams at 3 replicas, PostgreSQL, Temporal, two replicas of every part and two workers, each
its own `assistance run --target …` process, behind HAProxy routing the Ingress's paths, all
supervised (a killed process is restarted, as Kubernetes restarts a pod). Every request goes
through the proxy's public HTTP API.

Thirty dossiers go through deposit → take → diagnose (usage) → respond → close in five waves.
Into the second wave a machine is lost: at once, the NATS node leading the DOSSIER stream,
the first replica of every part and the first worker are SIGKILLed; once they are back (and
the proxy sees every replica ready again, and every NATS node is current), the fourth wave
loses the node leading the stream then, the second replica of every part and the second
worker, so the processes restarted after the first loss are the ones serving. Then every 201
is accounted for as the fault test does (tests/lifecycle.py): one dossier, one workflow,
closed, no timeline entry twice, each customer mail once, nothing parked.

Clients retry a failed call (a 502 of a killed replica, a 503 while none is ready, a lost
connection) with the same Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from assistance import db
from assistance.bus import STREAMS, servers
from assistance.directory import Role
from composition.app import load_demo, migrate
from composition.parts import SERVICES
from deploy.local.cluster import NATS_NODES, WORKER, Cluster, ClusterConfig
from tests.lifecycle import account_for, lifecycle, until

pytestmark = pytest.mark.cluster

WAVES = 5
PER_WAVE = 6
KILL_IN_WAVES = (2, 4)  # a machine lost in each: replica n of every part, worker n, a NATS node
KILL_AFTER_S = 2.0  # into the wave: its dossiers are being deposited and opened
MAIL_LEASE_S = 15  # a mail whose sender was killed mid-send goes again after this
STREAM = "DOSSIER"
ARTIFACTS = Path("test-artifacts/cluster")  # every process's log, kept after the run


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    lines: list[str] = []
    config = ClusterConfig(
        data_dir=tmp_path_factory.mktemp("cluster"),
        persistent=True,  # a restarted NATS node or part keeps its state, as a pod's volume
        ui=False,
        env={
            "MAIL_SENDING_LEASE_SECONDS": str(MAIL_LEASE_S),
            "RELAY_POLL_SECONDS": "0.5",
            "LOG_LEVEL": "WARNING",
        },
    )
    started = time.monotonic()
    running = Cluster(config, SERVICES, progress=lines.append)
    try:
        await running.start(_prepare)
        print(f"\ncluster started in {time.monotonic() - started:.0f} s")
        yield running
    finally:
        began = time.monotonic()
        await running.stop()
        print(f"cluster stopped in {time.monotonic() - began:.0f} s")
        print("  " + "\n  ".join(lines))
        await asyncio.to_thread(_keep_logs, running.data_dir)


def _keep_logs(data_dir: Path) -> None:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    for log in data_dir.glob("*.log"):
        shutil.copy(log, ARTIFACTS / log.name)


async def _prepare(database_url: str) -> list[tuple[str, Role, str]]:
    await migrate(database_url)
    pool = await db.create_pool(database_url, 2)
    try:
        return await load_demo(pool)
    finally:
        await pool.close()


async def _stream_leader(cluster: Cluster) -> str:
    """The NATS node leading the DOSSIER stream's replicas (checked at R3 on the way)."""
    nc = await nats.connect(servers(cluster.endpoints.nats_url))
    try:
        info = await nc.jetstream().stream_info(STREAM)
    finally:
        await nc.close()
    assert info.config.num_replicas == NATS_NODES
    assert info.cluster is not None and info.cluster.leader is not None
    return info.cluster.leader


async def _every_stream_whole(cluster: Cluster) -> bool:
    """Every stream at 3 replicas with a leader, and both followers current."""
    nc = await nats.connect(servers(cluster.endpoints.nats_url))
    try:
        js = nc.jetstream()
        for name in STREAMS:
            info = await js.stream_info(name)
            if info.config.num_replicas != NATS_NODES or info.cluster is None:
                return False
            followers = info.cluster.replicas or []
            if not info.cluster.leader or len(followers) != NATS_NODES - 1:
                return False
            if not all(peer.current and not peer.offline for peer in followers):
                return False
        return True
    finally:
        await nc.close()


async def _all_back(cluster: Cluster) -> bool:
    """Every NATS node current (its /healthz), every stream whole, every replica ready in
    the proxy's eyes."""
    async with httpx.AsyncClient(trust_env=False) as http:
        for node in cluster.stack.nats_nodes:
            answer = await http.get(f"{cluster.stack.nats_monitor_url(node)}/healthz", timeout=5)
            if answer.status_code != 200:
                return False
    assert cluster.proxy is not None
    states = await cluster.proxy.states()
    return bool(states) and set(states.values()) == {"UP"} and await _every_stream_whole(cluster)


async def lose_a_machine(cluster: Cluster, n: int) -> list[str]:
    """SIGKILL, at once, the NATS node leading the DOSSIER stream, replica `n` of every part
    and worker `n`; wait until the supervisor has brought each back and the cluster is whole."""
    node = await _stream_leader(cluster)
    victims = [f"{service}-{n}" for service in SERVICES] + [f"{WORKER}-{n}"]
    restarts = {name: cluster.supervisor.restarts(name) for name in [node, *victims]}
    pids = [cluster.stack.pid(node)] + [cluster.part(name).pid() for name in victims]
    assert None not in pids, dict(zip([node, *victims], pids, strict=True))
    for pid in pids:
        os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]

    async def restarted() -> bool:
        return all(cluster.supervisor.restarts(name) > k for name, k in restarts.items())

    await until(restarted, f"{node} and {', '.join(victims)} restarted")
    await until(lambda: _all_back(cluster), "the cluster whole again")
    return [node, *victims]


async def test_every_dossier_accounted_for_after_losing_a_machine_twice(
    cluster: Cluster,
) -> None:
    started = time.monotonic()
    tokens = {role: token for _, role, token in cluster.tokens}
    flows: list[asyncio.Task[dict[str, Any]]] = []
    lost: list[list[str]] = []
    await until(lambda: _all_back(cluster), "the cluster whole (streams at 3 replicas)")

    async with httpx.AsyncClient(base_url=cluster.url, trust_env=False) as http:
        # the site, through the proxy (its replicas call the APIs through it too)
        home = await http.get("/", timeout=20)
        assert home.status_code == 200 and "text/html" in home.headers["content-type"]

        for wave in range(1, WAVES + 1):
            first = len(flows)
            for n in range(first, first + PER_WAVE):
                flows.append(asyncio.create_task(lifecycle(http, tokens, n)))
            if wave in KILL_IN_WAVES:
                await asyncio.sleep(KILL_AFTER_S)
                lost.append(await lose_a_machine(cluster, KILL_IN_WAVES.index(wave) + 1))
            else:
                await asyncio.sleep(KILL_AFTER_S)
        accepted = await asyncio.gather(*flows)
    assert len(accepted) == WAVES * PER_WAVE

    await account_for(
        accepted,
        database_url=cluster.endpoints.database_url,
        temporal_address=cluster.endpoints.temporal_address,
        mails=lambda: cluster.stack.mail.messages,
    )
    assert await _all_back(cluster)
    took = time.monotonic() - started
    print(f"\ncluster test: {len(accepted)} dossiers, machines lost: {lost}, {took:.0f} s")
    answers = await asyncio.to_thread(_answers, cluster.data_dir / "haproxy.log")
    print(f"  the proxy's answers by status: {dict(sorted(answers.items()))}")


def _answers(log: Path) -> Counter[str]:
    """HAProxy's answers on the public frontend, by status (its log, `option httplog`)."""
    statuses: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[2] == "public":
            statuses[fields[5]] += 1
    return statuses
