"""The Temporal client every part uses: pydantic payloads and the tracing interceptor; the
one way a part keeps a Temporal Schedule of its own; and what a signal to a finished
workflow raises."""

from __future__ import annotations

import functools
import logging
from dataclasses import replace
from typing import Any

from pydantic import TypeAdapter
from temporalio.client import (
    Client,
    Schedule,
    ScheduleAlreadyRunningError,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

log = logging.getLogger(__name__)

# One cache of type adapters for the whole process. The workflow sandbox makes a new payload
# converter for every workflow run; with a cache per converter, every run would build the
# schema of its input again (milliseconds of CPU per workflow).
_type_adapter = functools.lru_cache(maxsize=1024)(TypeAdapter)


def type_adapter(type_: Any) -> TypeAdapter[Any]:
    """The pydantic adapter the data converter uses for `type_` (shared, cached)."""
    return _type_adapter(type_)


class _SharedCacheJSON(PydanticJSONPlainPayloadConverter):
    def __init__(self) -> None:
        super().__init__()
        self._type_adapter: Any = _type_adapter


class PayloadConverter(CompositePayloadConverter):
    """Temporal's default converters, with pydantic JSON (dataclasses, models, datetimes)."""

    def __init__(self) -> None:
        super().__init__(
            *(
                _SharedCacheJSON() if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


data_converter = DataConverter(payload_converter_class=PayloadConverter)


async def connect(
    address: str, namespace: str = "default", *, lazy: bool = True, runtime: Runtime | None = None
) -> Client:
    """Connect lazily by default, so a part starts (and deposits work) while Temporal is down."""
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=data_converter,
        interceptors=[TracingInterceptor()],
        lazy=lazy,
        runtime=runtime,
    )


@functools.cache
def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime serving the SDK's own metrics (workflow task latency, activity
    failures, sticky cache…) in Prometheus format on `bind_address` (`host:port`); one per
    process."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind_address)))


class WorkflowFinished(Exception):
    """The workflow a signal was for has finished and is not running again: the signal is not
    delivered, and never will be. Raised by an outbox sender signalling workflows; what becomes
    of what the signal carried is the decision of the part whose relay sends it."""


async def ensure_schedule(client: Client, schedule_id: str, schedule: Schedule) -> None:
    """Create the schedule, or bring an existing one up to `schedule`'s action, spec and policy
    (its state, paused or not, is kept). Idempotent: every process may call it at start."""
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("schedule %s created", schedule_id)
    except ScheduleAlreadyRunningError:

        def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
            kept = current.description.schedule
            return ScheduleUpdate(
                schedule=replace(
                    kept, action=schedule.action, spec=schedule.spec, policy=schedule.policy
                )
            )

        await client.get_schedule_handle(schedule_id).update(update)
        log.info("schedule %s updated", schedule_id)
