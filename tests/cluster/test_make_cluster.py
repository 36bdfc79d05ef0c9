"""`make cluster` as a user runs it (`assistance cluster`, the real command): it says what it
starts, prints where it serves, serves the site and takes a deposit through the proxy, and a
Ctrl-C stops every process it started, exit code 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from deploy.local.stack import steady_port
from tests.helpers import Console, alive, deposit_body

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(sys.platform != "linux", reason="process groups, Linux only"),
]
STOP_S = 60.0  # a liveness bound: the parts stop within their grace, together


async def test_make_cluster_prints_where_it_serves_and_ctrl_c_stops_everything(
    tmp_path: Path,
) -> None:
    port = steady_port()
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "HTTP_PORT": str(port),
        "MAIL_LISTEN_PORT": str(steady_port()),
        "MAIL_PAGES_PORT": str(steady_port()),
        "DEV_PAGES": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "assistance"),
        "cluster",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    console = Console(process)
    launcher = psutil.Process(process.pid)
    try:
        await console.until("NATS JetStream (3 nœuds)")
        await console.until("Centre de service prêt, forme cluster.", timeout=240)
        site = await console.until("  Site ")
        assert f"http://127.0.0.1:{port}/" in site
        assert "HAProxy" in await console.until("  API ")
        nats = await console.until("  NATS ")
        assert nats.count("nats://") == 3
        await console.until("Ctrl-C pour arrêter.")
        names = [" ".join(p.cmdline()) for p in launcher.children(recursive=True)]
        for part in ("intake", "dossier", "training", "bugs", "evolutions", "operations"):
            assert sum(f"--target {part}" in name for name in names) == 2, (part, names)
        assert sum("--target site" in name for name in names) == 2
        assert sum("--target worker" in name for name in names) == 2
        assert sum("nats-server" in name for name in names) == 3
        assert sum("haproxy" in name for name in names) == 1

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as http:
            home = await http.get("/")
            assert home.status_code == 200 and "text/html" in home.headers["content-type"]
            deposit = await http.post("/api/v1/requests", json=deposit_body())
            assert deposit.status_code == 201, deposit.text

        everything = [p.pid for p in launcher.children(recursive=True)]
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal
        began = time.monotonic()
        await console.until("Arrêt")
        await console.until("Tout est arrêté.", timeout=STOP_S)
        code = await asyncio.wait_for(process.wait(), STOP_S)
        print(f"\nmake cluster stopped in {time.monotonic() - began:.0f} s")
        assert code == 0
        assert [pid for pid in everything if alive(pid)] == []
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
