"""Watch what a local run started and restart what dies (issue 11, item 9; decision 0014).

`make run` (`assistance dev`) and the fault test start Temporal, NATS, PostgreSQL, the mail
catcher, the services process and the worker process; production has its orchestrator for
this, a developer's machine has this. Each component is given as a way to (re)start it (which
returns once it is ready again, on the same port and data) and a way to tell whether it runs.
A component found dead is restarted after a delay that doubles while it keeps dying (up to
MAX_DELAY_S) and resets once it has stayed up for STABLE_S; each death and each restart is
one line in the console, in French.

    supervisor = Supervisor(say=print)
    supervisor.watch("NATS", stack.start_nats, lambda: stack.running("nats"))
    async with supervisor:          # watching until the block ends
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deploy.local.stack import start_process, stop_process

log = logging.getLogger(__name__)

CHECK_S = 0.5
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0
STABLE_S = 60.0


@dataclass
class _Watched:
    name: str
    start: Callable[[], Awaitable[object]]
    alive: Callable[[], bool]
    delay: float = FIRST_DELAY_S
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0


class Supervisor:
    """Restarts dead components, with backoff, telling the console."""

    def __init__(self, say: Callable[[str], None] = print) -> None:
        self.say = say
        self._watched: dict[str, _Watched] = {}
        self._task: asyncio.Task[None] | None = None
        self._restarting: set[str] = set()
        self._bringing: set[asyncio.Task[None]] = set()

    def watch(
        self, name: str, start: Callable[[], Awaitable[object]], alive: Callable[[], bool]
    ) -> None:
        """Watch `name` (already started): `alive()` says if it runs, `start()` brings it back."""
        self._watched[name] = _Watched(name, start, alive)

    def restarts(self, name: str) -> int:
        return self._watched[name].restarts

    def restarting(self) -> set[str]:
        """The components being brought back right now."""
        return set(self._restarting)

    def start(self) -> None:
        """Start watching (until `stop`)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="supervisor")

    async def __aenter__(self) -> Supervisor:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop watching (before stopping the components, so nothing is restarted)."""
        task, self._task = self._task, None
        tasks = [t for t in (task, *self._bringing) if t is not None]
        for pending in tasks:
            pending.cancel()
        for pending in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await pending

    async def _run(self) -> None:
        while True:
            for item in list(self._watched.values()):
                if item.name not in self._restarting and not item.alive():
                    self._restarting.add(item.name)
                    task = asyncio.create_task(self._bring_back(item), name=f"restart {item.name}")
                    self._bringing.add(task)
                    task.add_done_callback(self._bringing.discard)
            await asyncio.sleep(CHECK_S)

    async def _bring_back(self, item: _Watched) -> None:
        try:
            if time.monotonic() - item.started_at >= STABLE_S:
                item.delay = FIRST_DELAY_S
            while True:
                self.say(
                    f"⚠ {item.name} s'est arrêté : redémarrage dans {item.delay:.1f} s "
                    f"({item.name} stopped; restarting)"
                )
                await asyncio.sleep(item.delay)
                item.delay = min(item.delay * 2, MAX_DELAY_S)
                began = time.monotonic()
                try:
                    await item.start()
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - told, then tried again
                    self.say(f"⚠ {item.name} n'a pas pu redémarrer : {error}")
                    log.warning("could not restart %s", item.name, exc_info=True)
                    continue
                item.started_at = time.monotonic()
                item.restarts += 1
                self.say(
                    f"▸ {item.name} redémarré en {item.started_at - began:.1f} s "
                    f"({item.name} restarted)"
                )
                return
        finally:
            self._restarting.discard(item.name)


class Child:
    """A part of the system run as `assistance run --target …` in a child process: started,
    restarted (what is left of a dead one is cleared first) and stopped; `start()` returns once
    the part answers `/healthz` on its HTTP port."""

    def __init__(
        self, name: str, targets: list[str], log: Path, env: dict[str, str], http_port: int
    ) -> None:
        self.name, self.targets, self.log = name, targets, log
        self.env = {**env, "HTTP_PORT": str(http_port)}
        self.http_port = http_port
        self.child: Any = None

    async def start(self) -> None:
        if self.child is not None:
            await stop_process(self.child)
        argv = [str(Path(sys.executable).parent / "assistance"), "run"]
        for target in self.targets:
            argv += ["--target", target]
        self.child = await start_process(self.name, argv, self.log, self.env)
        await self._answers(f"http://127.0.0.1:{self.http_port}/healthz")

    def alive(self) -> bool:
        return self.child is not None and self.child.running

    def pid(self) -> int | None:
        return int(self.child.process.pid) if self.alive() else None

    async def stop(self) -> None:
        if self.child is not None:
            await stop_process(self.child)

    async def _answers(self, url: str, timeout: float = 120.0) -> None:
        """Wait until the part answers; fail if it exits first (with the end of its log)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(trust_env=False) as http:
            while True:
                if not self.alive():
                    raise RuntimeError(
                        f"{self.name} s'est arrêté ({self.log}) :\n{self.child.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(url, timeout=2)).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} ne répond pas ; voir {self.log}")
                await asyncio.sleep(0.2)
