"""Who works on what next: the queue (R4) and each technician's own follow-ups.

A technician free to work answers a ringing phone first (R1: a call is answered live), else
takes the earliest of two things: the head of the queue of new dossiers, in the order R4
gives it (`services.dossier.domain.queue_order`: the weekend's deposits first on Monday
morning, then first come, first served), and the oldest of their own dossiers that came back
to them (a customer answered their question). Earliest means the weekend's deposits first,
then by the time each piece of work became waiting.

Pure module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.dossier.domain import QueueEntry, queue_order


@dataclass(frozen=True)
class Work:
    """A dossier waiting for a technician: a new one in the queue (`owner` None), or one that
    came back to the technician who follows it."""

    dossier_id: str
    reference: str
    ready_at: datetime  # received (a new dossier), or when it came back
    weekend: bool = False  # R4: deposited while the centre was closed for a weekend
    owner: str | None = None

    @property
    def key(self) -> tuple[bool, datetime, str]:
        return (not self.weekend, self.ready_at, self.reference)


def next_work(technician_id: str, waiting: Iterable[Work]) -> Work | None:
    """The work this technician does next, or None if nothing waits for them."""
    queue: list[Work] = []
    own: list[Work] = []
    for work in waiting:
        if work.owner is None:
            queue.append(work)
        elif work.owner == technician_id:
            own.append(work)
    head = _head(queue)
    mine = min(own, key=lambda w: w.key, default=None)
    candidates = [w for w in (head, mine) if w is not None]
    return min(candidates, key=lambda w: w.key, default=None)


def _head(queue: list[Work]) -> Work | None:
    if not queue:
        return None
    by_id = {w.dossier_id: w for w in queue}
    entries = [QueueEntry(w.dossier_id, w.reference, w.ready_at, w.weekend) for w in queue]
    return by_id[queue_order(entries)[0].dossier_id]
