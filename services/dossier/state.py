"""What the dossier process receives, keeps and answers: plain dataclasses, no logic.

The state, the commands and the orders of the dossier process (services/dossier/process.py),
the DossierWorkflow's input and answers. Passed through the workflow sandbox like pydantic
models: data only, so one type (and one cached type adapter) per process."""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from assistance.events import Event

if TYPE_CHECKING:
    from assistance.business_time import BusinessCalendar


@dataclass
class DossierPolicy:
    """The rules a dossier was opened under (fixed at opening, so a replay never changes).

    Durations are business hours (R3 calendar: Monday–Friday, French holidays excluded).
    """

    timezone: str = "Europe/Paris"
    business_hours: str = "09:00-12:00,13:00-18:00"
    closed_days: str = ""
    first_response_hours: float = 4.0  # R3 engagement 1
    warning_fraction: float = 0.75  # R3 warning before breach
    reminder_hours: float = 4.0  # R2: no activity for this long → remind the technician
    escalation_hours: float = 8.0  # R2: still nothing → escalate to an admin
    customer_reminder_hours: float = 16.0  # waiting for the customer → remind them
    service_reminder_hours: float = 40.0  # waiting on training/bugs/evolutions → follow up
    confirmation_hours: float = 40.0  # resolved, no answer from the customer → close
    usage_target_hours: float = 1.0  # R6: a usage question is resolved within the hour
    reopen_window_days: int = 180  # a closed dossier can be reopened this long by reply
    history_limit: int = 0  # continue-as-new after this many steps (0: when Temporal suggests)


@dataclass
class DossierOpening:
    """A committed request, as the intake relay hands it to the workflow (id = dossier id)."""

    dossier_id: str
    reference: str
    channel: str  # web | mail | phone
    requester_email: str
    requester_name: str
    software: str
    subject: str
    description: str
    received_at: datetime
    first_response_due: datetime
    organisation_id: str | None = None
    technician_id: str | None = None  # phone: the technician who took the call
    technician_name: str | None = None
    caller_phone: str | None = None
    message_id: str | None = None  # mail: the customer's Message-ID, for threading
    policy: DossierPolicy = field(default_factory=DossierPolicy)
    carried: DossierState | None = None  # the state carried over by continue-as-new
    # the ids of the updates earlier runs applied (the latest UPDATE_IDS_KEPT), carried over by
    # continue-as-new: Temporal keeps update ids per run (docs/decisions/0012)
    carried_updates: list[str] = field(default_factory=list)


@dataclass
class Actor:
    """Who gives a command: a user id, a role, a display name."""

    user_id: str
    role: str
    name: str = ""


@dataclass
class ActorCmd:
    """A command that carries only who gives it: take, release, confirm."""

    actor: Actor


@dataclass
class DiagnosisCmd:
    """R5: the client's work context, the technical need, and the classification."""

    actor: Actor
    kind: str  # usage | advanced_usage | bug | evolution
    context: str
    need: str
    version: str | None = None


@dataclass
class MessageCmd:
    """A response to the customer, an internal note, or a request for information."""

    actor: Actor
    text: str
    attachments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ScreenShareCmd:
    actor: Actor
    link: str


@dataclass
class WorkaroundCmd:
    """R8: the workaround given to the customer, or why there is none."""

    actor: Actor
    text: str | None = None
    none_reason: str | None = None


@dataclass
class CloseCmd:
    actor: Actor
    resolution: str


@dataclass
class ReopenCmd:
    actor: Actor
    reason: str


@dataclass
class CustomerMessage:
    """A message from the customer (web reply or mail), delivered as a signal."""

    text: str
    author_email: str
    author_name: str = ""
    via: str = "web"  # web | mail
    message_id: str | None = None
    received_at: datetime | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class MailOrder:
    """One mail to the customer; idempotent per dossier and step (its Message-ID)."""

    dossier_id: str
    reference: str
    step: int
    template: str  # acknowledgement | response | information_request | reminder | ...
    to: str
    context: dict[str, Any]
    thread: list[str] = field(default_factory=list)  # earlier Message-IDs, oldest first
    auto: bool = False  # automatic mail: Auto-Submitted: auto-generated


@dataclass
class StaffNotice:
    """A warning, reminder or escalation to staff; idempotent per dossier and step."""

    dossier_id: str
    reference: str
    step: int
    audience: str  # technician | team | admins | training_lead
    kind: str  # first_response_warning | first_response_breach | reminder | escalation | ...
    subject: str
    text: str
    technician_id: str | None = None


@dataclass
class HandOver:
    """R7–R9: hand the dossier to the service that owns the next step (NATS request)."""

    service: str  # training | bugs | evolutions
    dossier_id: str
    reference: str
    software: str
    organisation_id: str | None
    requester_email: str
    requester_name: str
    subject: str
    description: str
    context: str
    need: str
    version: str | None = None
    workaround: str | None = None
    attempt: int = 1


@dataclass
class StepRecord:
    """What one step of the process (one `apply`) gives the outside world, recorded at once:
    its events, its mails to the customer and its notices to staff, in order. Written to the
    outbox in one transaction (patch `effects-recorded-per-step`); the relay sends them."""

    dossier_id: str
    reference: str
    events: list[Event] = field(default_factory=list)
    mails: list[MailOrder] = field(default_factory=list)
    notices: list[StaffNotice] = field(default_factory=list)


@dataclass
class DossierView:
    """The process state as the workflow holds it (query and update answers)."""

    dossier_id: str
    reference: str
    status: str
    kind: str | None
    technician_id: str | None
    technician_name: str | None
    first_response_due: datetime
    first_responded_at: datetime | None
    closed_at: datetime | None
    resolution: str | None
    waiting_for: str | None
    seq: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class DossierState:
    """Everything the workflow knows; carried across continue-as-new."""

    status: str = (
        "new"  # new | in_progress | waiting_customer | waiting_service | resolved | closed
    )
    kind: str | None = None
    technician_id: str | None = None
    technician_name: str | None = None
    first_responded_at: datetime | None = None
    last_activity_at: datetime | None = None
    waiting_since: datetime | None = None
    waiting_for: str | None = None  # customer | training | bug_fix | evolution_decision
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    resolution: str | None = None
    context: str | None = None
    need: str | None = None
    version: str | None = None
    workaround: str | None = None
    workaround_none_reason: str | None = None
    warned: bool = False
    breached: bool = False
    breached_at: datetime | None = None
    reminded: bool = False
    escalated: bool = False
    customer_reminded: bool = False
    cycle_from: datetime | None = None  # R2: a new reminder cycle started (after an escalation)
    handover_attempt: int = 0
    step: int = 0  # every side effect's number (events, mails, notices)
    last_event: int = 0  # the `seq` of the last event published (the read model catches up)
    thread: list[str] = field(default_factory=list)  # Message-IDs of the dossier's mails
    seen_events: list[str] = field(default_factory=list)  # service events already applied
    details: dict[str, Any] = field(default_factory=dict)
    reopened: int = 0


# --- the dossier process (services/dossier/process.py): what it is given, what it gives ------


@dataclass(frozen=True)
class Context:
    """What a dossier's process is computed with: its opening (and the policy it was opened
    under), the business calendar (R3), and the changes it runs with."""

    opening: DossierOpening
    calendar: BusinessCalendar
    features: Container[str]  # services/dossier/process.py FEATURES: all of today's
    carry_out: Callable[[Effect], None] | None = None  # told each effect as it is produced

    @property
    def policy(self) -> DossierPolicy:
        return self.opening.policy


# --- what comes in ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Open:
    """The dossier opens (the first thing a fresh workflow does)."""


@dataclass(frozen=True)
class Command:
    """A staff or customer command; `name` is the workflow update's."""

    name: str
    cmd: Any


class Timer(StrEnum):
    """What happens when the next deadline falls due."""

    warn_first_response = "warn_first_response"  # R3: the warning fraction of the delay
    breach_first_response = "breach_first_response"  # R3: the due time
    remind_technician = "remind_technician"  # R2
    escalate = "escalate"  # R2
    remind_customer = "remind_customer"  # waiting for the customer
    close_unanswered = "close_unanswered"  # resolved, never confirmed (R10)


@dataclass(frozen=True)
class MailSent:
    """A mail left: its Message-ID joins the dossier's thread."""

    message_id: str


@dataclass(frozen=True)
class HandOverAnswered:
    """The service a dossier was handed over to answered (its ticket)."""

    service: str
    answer: dict[str, Any]


@dataclass(frozen=True)
class EffectFailed:
    """An effect failed for good (docs/decisions/0013): recorded on the dossier."""

    activity: str
    error: str


Message = (
    Open | Command | CustomerMessage | Event | Timer | MailSent | HandOverAnswered | EffectFailed
)

# --- what goes out ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Publish:
    """Publish `dossier.dossier.<what>` (the read model, the other services)."""

    event: Event

    @property
    def what(self) -> str:
        return self.event.type.removeprefix("dossier.dossier.")


@dataclass(frozen=True)
class SendMail:
    order: MailOrder


@dataclass(frozen=True)
class NotifyStaff:
    notice: StaffNotice


@dataclass(frozen=True)
class HandOverTo:
    """R7–R9: ask the owning service; its facts come back as events, its answer as
    `HandOverAnswered`."""

    order: HandOver


Effect = Publish | SendMail | NotifyStaff | HandOverTo


@dataclass
class Outcome:
    state: DossierState
    effects: list[Effect] = field(default_factory=list)
    changed: bool = False  # the follow-through deadline must be computed again

    @property
    def published(self) -> list[Publish]:
        return [e for e in self.effects if isinstance(e, Publish)]


@dataclass(frozen=True)
class Deadline:
    at: datetime
    timer: Timer
