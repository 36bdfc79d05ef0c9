"""An open-loop load generator: calls scheduled at a constant arrival rate, whatever the system
answers, each latency measured from the instant the call was *scheduled* (not sent).

A closed loop sends its next call only once the previous one answered: when the system slows
down, the generator slows down with it and the slow period is sampled less ("coordinated
omission"). Here call `i` is due at `start + i / rate`; if the generator itself falls behind,
the delay counts in the latency, as it would for a person waiting."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.load import MAX_SAMPLES, Call, percentile

START_DELAY_S = 0.05  # the first call's slot, after the tasks are set up


@dataclass
class OpenLoopRun:
    """One operation at one rate; live counters (progress) and the result."""

    operation: str
    rate: float  # calls per second
    seconds: float
    share: float = 0.0  # the rate as a fraction of the measured capacity
    sent: int = 0
    ok: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds from the scheduled instant
    failures: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    most_in_flight: int = 0
    behind_s: float = 0.0  # the most the generator was late sending a call

    @property
    def scheduled(self) -> int:
        return max(1, round(self.rate * self.seconds))

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def latency_ms(self, q: float) -> float:
        return percentile(sorted(self.latencies), q) * 1000

    async def run(self, call: Call, first_index: int = 0) -> OpenLoopRun:
        in_flight = 0
        start = time.perf_counter() + START_DELAY_S

        async def one(index: int, due: float) -> None:
            nonlocal in_flight
            in_flight += 1
            self.most_in_flight = max(self.most_in_flight, in_flight)
            try:
                outcome = await call(index)
            except Exception as error:  # noqa: BLE001 - counted and reported
                outcome = (type(error).__name__, str(error) or repr(error))
            finally:
                in_flight -= 1
            if outcome is None:
                self.ok += 1
                self.latencies.append(time.perf_counter() - due)
                return
            kind, detail = outcome
            self.failures[kind] += 1
            if len(self.samples) < MAX_SAMPLES:
                self.samples.append(f"{kind}: {detail[:300]}")

        tasks: list[asyncio.Task[None]] = []
        for i in range(self.scheduled):
            due = start + i / self.rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                self.behind_s = max(self.behind_s, -wait)
            self.sent += 1
            tasks.append(asyncio.create_task(one(first_index + i, due)))
        await asyncio.gather(*tasks)
        return self
