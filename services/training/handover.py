"""The training side of the hand-over (docs/contracts.md §1, assistance/handover.py): a
responder on `commands.training.open` that books the appointment (R7).

The answer goes out only after the booking is committed. Requests are handled concurrently,
eight at a time, so one slow booking never holds up the others.
"""

from __future__ import annotations

from functools import partial

from assistance.bus import Bus
from assistance.handover import HandOverResponder, command_subject
from services.training import booking
from services.training.context import Context
from services.training.models import HandOverIn

SUBJECT = command_subject("training")
CONCURRENCY = 8


def responder(ctx: Context, bus: Bus) -> HandOverResponder[HandOverIn]:
    return HandOverResponder(
        bus, "training", HandOverIn, partial(booking.open_request, ctx), concurrency=CONCURRENCY
    )
