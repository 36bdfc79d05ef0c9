"""A closed-loop load generator: `concurrency` callers, each sending its next call as soon as
the previous one answered, until `total` calls were sent or `seconds` have passed."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

# A call returns None when it succeeded, else (a short failure kind, a detail).
Outcome = tuple[str, str] | None
Call = Callable[[int], Awaitable[Outcome]]

MAX_SAMPLES = 5


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an already sorted list; NaN when empty."""
    if not sorted_values:
        return float("nan")
    # rounded first: 99.9 / 100 × 1000 is 999.0000000000001 in floating point, not rank 1000
    rank = max(1, min(len(sorted_values), math.ceil(round(q / 100 * len(sorted_values), 9))))
    return sorted_values[rank - 1]


@dataclass
class LoadRun:
    """Live counters of one run (read by the progress ticker) and its result."""

    name: str
    concurrency: int
    total: int
    seconds: float
    sent: int = 0
    ok: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, successful calls only
    failures: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    started: float = 0.0  # perf_counter when the first call was sent
    finished: float = 0.0  # perf_counter when the last call answered
    capped: bool = False  # the time cap ended the run before `total` calls

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def elapsed(self) -> float:
        return max(self.finished - self.started, 1e-9)

    @property
    def rate(self) -> float:
        """Successful calls per second over the run."""
        return self.ok / self.elapsed

    def latency_ms(self, q: float) -> float:
        return percentile(sorted(self.latencies), q) * 1000

    async def run(self, call: Call) -> LoadRun:
        indexes = iter(range(self.total))
        self.started = time.perf_counter()
        deadline = self.started + self.seconds

        async def caller() -> None:
            for index in indexes:
                if time.perf_counter() >= deadline:
                    self.capped = True
                    return
                self.sent += 1
                begun = time.perf_counter()
                try:
                    outcome = await call(index)
                except Exception as error:  # noqa: BLE001 - counted and reported
                    outcome = (type(error).__name__, str(error) or repr(error))
                done = time.perf_counter()
                self.finished = max(self.finished, done)
                if outcome is None:
                    self.ok += 1
                    self.latencies.append(done - begun)
                else:
                    kind, detail = outcome
                    self.failures[kind] += 1
                    if len(self.samples) < MAX_SAMPLES:
                        self.samples.append(f"{kind}: {detail[:300]}")

        await asyncio.gather(*(caller() for _ in range(self.concurrency)))
        return self


REQUEST_TIMEOUT_S = 30.0


# Below the server's own idle keep-alive (uvicorn: 5 s): a connection the server is closing is
# never reused for a POST, which the client would not resend (a "server disconnected" that no
# caller of the system would see from a real browser or proxy).
KEEPALIVE_S = 3.0


def http_session(concurrency: int) -> aiohttp.ClientSession:
    """One keep-alive connection per caller; a generous per-request timeout."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=concurrency, force_close=False, keepalive_timeout=KEEPALIVE_S
        ),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    )


def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: Callable[[int], dict[str, Any]],
    expect: int = 201,
) -> Call:
    async def call(index: int) -> Outcome:
        try:
            async with session.post(url, json=body(index)) as answer:
                text = await answer.read()
                if answer.status == expect:
                    return None
                return f"HTTP {answer.status}", text.decode(errors="replace")
        except TimeoutError:
            return f"no answer within {REQUEST_TIMEOUT_S:.0f} s", url

    return call


def deposit_body(index: int) -> dict[str, Any]:
    """A valid web deposit, like the tests' one, with a different subject each time."""
    return {
        "requester": {"email": "claire.martin@dupont-sa.fr", "name": "Claire Martin"},
        "software": "manao-compta",
        "subject": f"Export FEC impossible (essai de charge n° {index})",
        "description": "Depuis ce matin l'export FEC s'arrête à 50 %.",
    }


def get_ok(
    session: aiohttp.ClientSession,
    url: Callable[[int], str],
    headers: dict[str, str],
    expect: int = 200,
) -> Call:
    """A read: `url(index)` fetched whole with these headers, `expect` as its answer."""

    async def call(index: int) -> Outcome:
        target = url(index)
        try:
            async with session.get(target, headers=headers) as answer:
                text = await answer.read()
                if answer.status == expect:
                    return None
                return f"HTTP {answer.status}", text.decode(errors="replace")
        except TimeoutError:
            return f"no answer within {REQUEST_TIMEOUT_S:.0f} s", target

    return call
