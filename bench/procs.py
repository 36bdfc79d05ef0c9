"""Child processes of the benchmark: started in their own session, always stopped.

Each child writes to a log file, receives SIGTERM if the benchmark dies (Linux), and is killed
with its process group at interpreter exit if `stop()` was never reached.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

_live: set[int] = set()


def _kill_leftovers() -> None:
    for pid in list(_live):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    _live.clear()


atexit.register(_kill_leftovers)


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def hook() -> None:
        prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG

    return hook


class Child:
    """One subprocess: `await start()`, `await stop()`; output in `log_path`."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )
        _live.add(self.process.pid)

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL to the whole group after `timeout` seconds."""
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        _live.discard(process.pid)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def check_alive(self) -> None:
        if not self.running:
            code = self.process.returncode if self.process else None
            raise RuntimeError(
                f"{self.name} exited (code {code}); end of {self.log_path}:\n{self.tail()}"
            )


async def wait_http_ok(child: Child, url: str, timeout: float = 60.0) -> float:
    """Poll `url` until it answers 200; returns the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http:
        while time.monotonic() < deadline:
            child.check_alive()
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(url) as answer:
                    if answer.status == 200:
                        return time.monotonic() - started
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{child.name}: {url} not 200 after {timeout:.0f} s:\n{child.tail()}")


async def wait_log_line(child: Child, marker: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check_alive()
        if marker in child.log_text():
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{child.name}: no {marker!r} after {timeout:.0f} s:\n{child.tail()}")
