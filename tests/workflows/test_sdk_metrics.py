"""The Temporal SDK's own metrics: a client on `metrics_runtime` serves them in Prometheus
format on its port (the worker's `TEMPORAL_METRICS_PORT`)."""

from __future__ import annotations

import httpx

from assistance import temporal as temporal_client
from deploy.local.stack import Endpoints, free_port
from tests.helpers import eventually


async def test_the_sdk_metrics_are_served(endpoints: Endpoints) -> None:
    address = f"127.0.0.1:{free_port()}"
    runtime = temporal_client.metrics_runtime(address)
    assert temporal_client.metrics_runtime(address) is runtime  # one per process
    client = await temporal_client.connect(endpoints.temporal_address, lazy=False, runtime=runtime)
    await client.count_workflows()

    async def served() -> str | None:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://{address}/metrics")).text
        return text if "temporal_request" in text else None

    text = await eventually(served, timeout=10, every=0.3)
    assert 'operation="CountWorkflowExecutions"' in text
