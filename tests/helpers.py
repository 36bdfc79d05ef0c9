"""Small helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")
LIVENESS_FLOOR_S = 30.0


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def deposit_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "requester": {"email": "claire.martin@dupont-sa.fr", "name": "Claire Martin"},
        "software": "manao-compta",
        "subject": "Export FEC impossible",
        "description": "Depuis ce matin l'export FEC s'arrête à 50 %.",
    }
    body.update(overrides)
    return body


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 10.0, every: float = 0.1
) -> T:
    """Poll until `probe` returns something truthy; fail with the last value otherwise.

    The timeout is a liveness bound, not a speed check (speed is measured by `make bench`):
    it is never under LIVENESS_FLOOR_S, so a loaded CI machine does not fail a correct run.
    """
    timeout = max(timeout, LIVENESS_FLOOR_S)
    deadline = asyncio.get_running_loop().time() + timeout
    last: T | None = None
    while asyncio.get_running_loop().time() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
