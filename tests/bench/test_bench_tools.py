"""The benchmark's own tools, without servers: the open loop counts a call's latency from the
instant it was scheduled (no coordinated omission), percentiles, the SVG chart."""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET

from bench.charts import line_chart, open_loop_chart
from bench.load import Outcome, percentile
from bench.openloop import OpenLoopRun

CALL_S = 0.05


async def test_the_open_loop_counts_the_wait_of_calls_sent_late() -> None:
    """Calls due every 10 ms on a loop that each call holds 50 ms: call i is sent at least
    i × 40 ms late, and its latency says so (a closed loop would report 50 ms each)."""

    async def blocking(index: int) -> Outcome:
        time.sleep(CALL_S)  # noqa: ASYNC251 - holds the loop: the generator falls behind
        return None

    run = await OpenLoopRun("read", rate=100.0, seconds=0.1).run(blocking)
    assert run.sent == run.ok == run.scheduled == 10
    worst = max(run.latencies)
    assert worst >= (run.scheduled - 1) * (CALL_S - 1 / run.rate)
    assert run.behind_s > 0


async def test_failures_are_counted_and_sampled_not_timed() -> None:
    async def refused(index: int) -> Outcome:
        return ("HTTP 429", "trop de requêtes") if index % 2 else None

    run = await OpenLoopRun("deposit", rate=200.0, seconds=0.05).run(refused)
    assert run.sent == 10 and run.ok == 5 and run.failed == 5
    assert len(run.latencies) == 5 and run.samples[0].startswith("HTTP 429")


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert percentile(values, 50) == 500 and percentile(values, 99.9) == 999
    assert math.isnan(percentile([], 99))


def test_the_chart_is_an_svg_with_a_line_per_operation() -> None:
    runs = []
    for share in (0.25, 0.5, 0.75):
        for operation in ("search", "deposit"):
            run = OpenLoopRun(operation, rate=10.0, seconds=1.0, share=share)
            run.latencies = [share, share * 2]
            runs.append(run)
    svg = ET.fromstring(open_loop_chart(runs))
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2 and all(len(line.get("points", "").split()) == 3 for line in lines)
    texts = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert {"search", "deposit", "50% of capacity"} <= texts
    # a missing point is left out of its line, not drawn at zero
    gap = ET.fromstring(line_chart("t", ["a", "b"], {"s": [1.0, math.nan]}, "ms"))
    assert gap.find("{http://www.w3.org/2000/svg}polyline").get("points").count(",") == 1
