"""Baseline (b): how fast one client can start workflows on the same Temporal dev server.

The workflow does nothing; its worker runs in its own process, so the server also dispatches
and records the workflow tasks, as it does for the system's dossiers:

    python -m bench.bare_temporal --address 127.0.0.1:7233 --task-queue bench-noop
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from bench.load import Call, Outcome

READY = "bench worker ready"


@workflow.defn(name="BenchNoopWorkflow")
class NoopWorkflow:
    @workflow.run
    async def run(self, index: int) -> int:
        return index


def start_call(client: Client, task_queue: str, prefix: str) -> Call:
    async def call(index: int) -> Outcome:
        await client.start_workflow(
            NoopWorkflow.run, index, id=f"{prefix}-{index}", task_queue=task_queue
        )
        return None

    return call


async def _serve(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=task_queue, workflows=[NoopWorkflow]):
        print(READY, flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    asyncio.run(_serve(args.address, args.task_queue))


if __name__ == "__main__":
    main()
