"""`make run` (`assistance dev`) supervises what it started (issue 11, item 9): a component
that dies is restarted, with a line in the console saying so; Ctrl-C still stops everything and
leaves no process behind. Run as a developer would: the real command, real servers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import psutil
import pytest

from deploy.local.stack import free_port
from tests.helpers import Console, alive


def _named(parent: psutil.Process, marker: str) -> psutil.Process:
    for child in parent.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if marker in " ".join(child.cmdline()):
                return child
    raise AssertionError(f"no child process with {marker!r}")


async def test_a_killed_part_comes_back_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "HTTP_PORT": str(free_port()),
        "MAIL_LISTEN_PORT": str(free_port()),
        "MAIL_PAGES_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "assistance"),
        "dev",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    console = Console(process)
    dev = psutil.Process(process.pid)
    try:
        await console.until("Centre de service prêt.")

        worker = _named(dev, "--target worker")
        worker.kill()  # SIGKILL
        assert "worker s'est arrêté" in await console.until("worker s'est arrêté")
        await console.until("worker redémarré")
        assert _named(dev, "--target worker").pid != worker.pid

        nats = _named(dev, "nats-server")
        nats.kill()
        await console.until("NATS s'est arrêté")
        await console.until("NATS redémarré")
        assert _named(dev, "nats-server").is_running()

        services = _named(dev, "--target intake")
        services.kill()
        await console.until("services redémarré")

        everything = [p.pid for p in dev.children(recursive=True)]
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal
        await console.until("Arrêt")
        code = await asyncio.wait_for(process.wait(), 60)
        assert code == 0
        left = [pid for pid in everything if alive(pid)]
        assert left == []
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups, Linux only")
