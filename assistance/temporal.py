"""The Temporal client every part uses: pydantic payloads and tracing interceptor."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter


async def connect(address: str, namespace: str = "default", *, lazy: bool = True) -> Client:
    """Connect lazily by default, so a part starts (and deposits work) while Temporal is down."""
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=pydantic_data_converter,
        interceptors=[TracingInterceptor()],
        lazy=lazy,
    )
