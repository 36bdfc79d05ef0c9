"""One failure policy for the whole data path (docs/decisions/0013).

Two kinds of failure, handled differently everywhere (consumers, outbox relays, activities):

- **the dependency is down** (PostgreSQL, NATS, Temporal, the SMTP server): nothing is wrong
  with the item; it is kept and tried again, in process, with a capped backoff, for as long as
  the dependency is down, and the attempt is not counted (R13: an outage loses nothing and
  parks nothing);
- **the item fails** (anything else): a bounded number of attempts with backoff, then the item
  is parked (`bus.parked`, assistance/parking.py) and the stream goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiosmtplib
import asyncpg
import nats.errors
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger(__name__)

T = TypeVar("T")


class TransientError(Exception):
    """A dependency is not available right now: wait for it, never count it."""


@dataclass(frozen=True)
class FailurePolicy:
    """How long to wait and how often to try; settings `FAILURE_*` and `OUTAGE_*`."""

    max_attempts: int = 8  # item failures before the item is parked
    backoff_s: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
    outage_first_s: float = 0.5  # first wait while a dependency is down
    outage_max_s: float = 15.0  # the wait between two tries never grows past this
    outbox_max_attempts: int = 10
    outbox_retention_days: float = 7.0
    heartbeat_s: float = field(default=5.0)

    def backoff(self, failures: int) -> float:
        """Delay before the next try after `failures` item failures (1-based)."""
        if not self.backoff_s:
            return 0.0
        return self.backoff_s[min(max(failures, 1), len(self.backoff_s)) - 1]


DEFAULT = FailurePolicy()


def policy_from(settings: Any) -> FailurePolicy:
    """The policy the settings describe (`FAILURE_*`, `OUTAGE_*`, `OUTBOX_*`)."""
    backoff = tuple(float(x) for x in settings.failure_backoff_seconds.split(",") if x.strip())
    return FailurePolicy(
        max_attempts=settings.failure_max_attempts,
        backoff_s=backoff,
        outage_max_s=settings.outage_max_wait_seconds,
        outage_first_s=min(0.5, settings.outage_max_wait_seconds),
        outbox_max_attempts=settings.outbox_max_attempts,
        outbox_retention_days=settings.outbox_retention_days,
        heartbeat_s=min(5.0, settings.outage_max_wait_seconds),
    )


_PG_OUTAGE = (
    asyncpg.exceptions.PostgresConnectionError,  # includes ConnectionDoesNotExistError
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, crash shutdown
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InsufficientResourcesError,
)
_NATS_OUTAGE = (
    nats.errors.ConnectionClosedError,
    nats.errors.NoServersError,
    nats.errors.NoRespondersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
)
_TEMPORAL_CONNECT = "Failed client connect"
_RPC_OUTAGE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
}


def _one_is_outage(exc: BaseException) -> bool:
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, asyncpg.exceptions.DataError):
        return False  # an argument that cannot be encoded: the item's fault (it subclasses
        # InterfaceError, so it is tested first)
    if isinstance(exc, _PG_OUTAGE + _NATS_OUTAGE):
        return True
    if isinstance(exc, asyncpg.InterfaceError):
        return "connection" in str(exc).lower() or "pool" in str(exc).lower()
    if isinstance(exc, RPCError):
        return exc.status in _RPC_OUTAGE or "timeout" in str(exc).lower()
    if type(exc) is RuntimeError and str(exc).startswith(_TEMPORAL_CONNECT):
        return True  # a lazy Temporal client that could not connect yet
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 400 <= exc.code < 500 and exc.code != 450  # 4xx: try later; 5xx: the item
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return False
    if isinstance(exc, aiosmtplib.SMTPException):
        return isinstance(exc, ConnectionError | TimeoutError)
    # ConnectionRefusedError, TimeoutError (asyncio's too), socket errors, nats' timeouts
    return isinstance(exc, OSError | ConnectionError | TimeoutError)


def is_outage(exc: BaseException) -> bool:
    """True when `exc` says a dependency is unavailable, not that the item is bad.

    Follows the cause chain: `raise TransientError(...) from exc` or a library wrapping a
    connection error both count.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _one_is_outage(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def describe(exc: BaseException) -> str:
    """The error as stored and shown to administrators (bounded, printable)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return printable(text)[:2000]


def printable(text: str) -> str:
    """Text PostgreSQL accepts: NUL replaced (a NUL is often the very reason for parking)."""
    return text.replace("\x00", "\ufffd")


class Outage:
    """The capped backoff of one wait for a dependency; `wait()` sleeps the next delay."""

    def __init__(self, policy: FailurePolicy) -> None:
        self.policy = policy
        self.delay = policy.outage_first_s
        self.waits = 0

    async def wait(self, keepalive: Callable[[], Awaitable[object]] | None = None) -> None:
        self.waits += 1
        remaining = self.delay
        while remaining > 0:
            step = min(remaining, self.policy.heartbeat_s)
            await asyncio.sleep(step)
            remaining -= step
            if keepalive is not None:
                try:
                    await keepalive()
                except Exception as exc:  # noqa: BLE001 - keepalive is best effort
                    log.debug("keepalive failed: %r", exc)
        self.delay = min(self.delay * 2, self.policy.outage_max_s)


async def through_outages(
    attempt: Callable[[], Awaitable[T]],
    policy: FailurePolicy = DEFAULT,
    *,
    what: str = "",
    keepalive: Callable[[], Awaitable[object]] | None = None,
) -> T:
    """Run `attempt` until it succeeds or fails for a reason that is not an outage.

    An outage is waited for as long as it lasts (capped backoff), uncounted; any other error
    is raised to the caller, which counts it.
    """
    outage = Outage(policy)
    while True:
        try:
            return await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_outage(exc):
                raise
            if outage.waits == 0 or outage.waits % 20 == 0:
                log.warning("%s: dependency unavailable (%s); waiting", what or "retry", exc)
            await outage.wait(keepalive)
