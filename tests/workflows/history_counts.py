"""Count what a dossier costs in Temporal history, per recorded scenario.

    python -m tests.workflows.history_counts [scenario ...]

Runs each scenario of record_histories.py on Temporal's time-skipping server (as the
recording does, without writing the file) and prints the history events, the activities
scheduled, the timers started and cancelled, and the workflow tasks. Figures in
docs/workflow-versioning.md.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

from temporalio.api.enums.v1 import EventType

from tests.workflows.harness import Fakes, running_worker, settled, time_skipping
from tests.workflows.record_histories import SCENARIOS, Run

COLUMNS = {
    "events": None,
    "activities": "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED",
    "timers": "EVENT_TYPE_TIMER_STARTED",
    "timers cancelled": "EVENT_TYPE_TIMER_CANCELED",
    "workflow tasks": "EVENT_TYPE_WORKFLOW_TASK_COMPLETED",
}


async def count(name: str) -> dict[str, int]:
    fakes = Fakes()
    async with time_skipping() as env, running_worker(env, fakes) as queue:
        run = Run(env, queue, name)
        await SCENARIOS[name](run)
        if name != "continue_as_new":
            await run.handle.result()
        await settled(run.handle)
        history = await run.handle.fetch_history()
    by_name = Counter(EventType.Name(e.event_type) for e in history.events)
    return {
        column: len(history.events) if kind is None else by_name[kind]
        for column, kind in COLUMNS.items()
    }


async def main(names: list[str]) -> None:
    print("| scenario | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name in names or SCENARIOS:
        figures = await count(name)
        print(f"| {name} | " + " | ".join(str(figures[c]) for c in COLUMNS) + " |")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
