"""Operations: the « travail bloqué » API, the RGPD export and erasure, and, in the background,
telling administrators of parked work (their mails go through the outbox, source `operations`)
and keeping the daily RGPD retention schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistance import metrics
from assistance.outbox import OutboxRelay
from assistance.parts import Part
from services.operations import notify, retention
from services.operations.api import router
from services.operations.stuck import SOURCE

__all__ = ["part", "router", "start"]

if TYPE_CHECKING:
    from assistance.runtime import Runtime


def start(rt: Runtime) -> None:
    relay = OutboxRelay(
        rt.pool,
        rt.bus,
        [SOURCE],
        {notify.MAIL: notify.sender(rt.settings)},
        rt.settings.relay_poll_seconds,
    )
    rt.background("operations outbox relay", relay.run)
    notifier = notify.Notifier(rt.pool, rt.settings, rt.settings.operations_notify_seconds)
    rt.background("parked work notifier", notifier.run)
    assert rt.temporal is not None
    # RGPD retention, daily (decision 0024); kept trying while Temporal is away, so readiness
    # does not wait for Temporal here (the « travail bloqué » view works without it too)
    client = rt.temporal
    rt.background(
        "personal data retention schedule", lambda: retention.keep_schedule(client, rt.settings)
    )
    # the kernel's series (outbox, parked items, consumers' lag), read by one part only
    rt.observe(metrics.bus_reader(rt.pool, rt.bus))


part = Part("operations", router=router, start=start)
