"""Small helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psutil

T = TypeVar("T")
LIVENESS_FLOOR_S = 30.0


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def deposit_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "requester": {"email": "claire.martin@dupont-sa.fr", "name": "Claire Martin"},
        "software": "manao-compta",
        "subject": "Export FEC impossible",
        "description": "Depuis ce matin l'export FEC s'arrête à 50 %.",
    }
    body.update(overrides)
    return body


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 10.0, every: float = 0.1
) -> T:
    """Poll until `probe` returns something truthy; fail with the last value otherwise.

    The timeout is a liveness bound, not a speed check (speed is measured by `make bench`):
    it is never under LIVENESS_FLOOR_S, so a loaded CI machine does not fail a correct run.
    """
    timeout = max(timeout, LIVENESS_FLOOR_S)
    deadline = asyncio.get_running_loop().time() + timeout
    last: T | None = None
    while asyncio.get_running_loop().time() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


CONSOLE_LIVENESS_S = 120.0


class Console:
    """The lines a command (`assistance dev`, `assistance cluster`) prints, read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def until(self, text: str, timeout: float = CONSOLE_LIVENESS_S) -> str:
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if text in line:
                return line
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            try:
                raw = await asyncio.wait_for(self.process.stdout.readline(), 1.0)
            except TimeoutError:
                continue
            if not raw:
                break
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r}; console:\n" + "\n".join(self.lines[-40:]))


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
