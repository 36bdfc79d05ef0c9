"""Simulated time for the simulated people, kept in step with the test server's clock.

Every simulated person or service is an asyncio task (`spawn`). A task waits for simulated
time with `sleep_until`, or for something to happen with `Bell.wait`; otherwise it is busy
(sending a command, waiting for the workflow's answer). The clock moves on only when every
task waits (`advance`): it then asks the server to skip to the earliest instant someone waits
for — the server fires, in order, every workflow timer due before it (reminders, warnings,
breaches) and does not skip while a workflow task or an activity is in flight — then wakes
everyone due then. So a command is given at the simulated instant it is meant for, give or
take the real time the step takes (milliseconds), and no timer fires before the work due
before it was done.

Instants are rounded up to the `tick` (a minute by default): people due within the same
minute act together, which lets their commands run concurrently.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

Skip = Callable[[datetime], Awaitable[datetime]]  # to the instant; answers the server's time


class Clock:
    def __init__(self, start: datetime, tick: timedelta = timedelta(minutes=1)) -> None:
        self.now = start
        self.tick = tick
        self._waiting: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._busy = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.failures: list[BaseException] = []

    # --- for the simulated people ------------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, None], name: str = "") -> None:
        """Run `work` as a simulated person or service; the clock waits for it to wait."""
        self._wake()
        task = asyncio.create_task(self._run(work), name=name or None)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sleep_until(self, at: datetime) -> None:
        """Wait for the simulated instant `at` (rounded up to the tick)."""
        at = self.on_tick(at)
        if at <= self.now:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (at, next(self._order), future))
        self._rest()
        await future

    async def sleep(self, duration: timedelta) -> None:
        await self.sleep_until(self.now + duration)

    def on_tick(self, at: datetime) -> datetime:
        """`at` rounded up to the tick (counted from the Unix epoch, in UTC)."""
        step = self.tick.total_seconds()
        seconds = (at - _EPOCH).total_seconds()
        rounded = -(-seconds // step) * step
        return (_EPOCH + timedelta(seconds=rounded)).astimezone(at.tzinfo)

    # --- for the driver ------------------------------------------------------------------------

    async def settle(self) -> None:
        """Wait until every task waits (for time or a bell); raise what a task raised."""
        while True:
            await self._quiet.wait()
            self._raise()
            if self._busy == 0:
                return

    def next_instant(self) -> datetime | None:
        return self._waiting[0][0] if self._waiting else None

    async def advance(self, until: datetime, skip: Skip, *, land: bool = False) -> None:
        """Wake everyone due up to `until`, in order. The server's clock is moved only to
        the instants someone waits for (every skip costs the server), and to `until` itself
        only if `land` (the end of the run)."""
        while True:
            await self.settle()
            at = self.next_instant()
            if at is None or at > until:
                break
            self.now = max(at, await skip(at))
            while self._waiting and self._waiting[0][0] <= self.now:
                _, _, future = heapq.heappop(self._waiting)
                if not future.done():
                    self._wake()
                    future.set_result(None)
        if land:
            self.now = max(until, await skip(until))
            await self.settle()
        else:
            self.now = max(self.now, until)

    async def stop(self) -> None:
        """Cancel every simulated person (the end of the run)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- internals -----------------------------------------------------------------------------

    async def _run(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            self.failures.append(error)
            self._quiet.set()
        finally:
            self._rest()

    def _wake(self) -> None:
        self._busy += 1
        self._quiet.clear()

    def _rest(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self._quiet.set()

    def _raise(self) -> None:
        if self.failures:
            raise self.failures[0]


class Bell:
    """Rings when there is something new to do (a request in the queue, a bug to fix); the
    people waiting for it wake up and look."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._waiting: list[asyncio.Future[None]] = []

    async def wait(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        self._clock._rest()
        await future

    def ring(self) -> None:
        waiting, self._waiting = self._waiting, []
        for future in waiting:
            if not future.done():
                self._clock._wake()
                future.set_result(None)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
