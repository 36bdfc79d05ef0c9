"""Property tests of the dossier process (services/dossier/process.py), without servers.

Random sequences of commands by random actors, customers' messages, services' facts, effect
answers and waits (deadlines falling due on the way, as in the workflow) are applied to the
pure machine from a random opening. After every step no rule is broken:

- the status is a known one, and `waiting_for` agrees with it;
- a closed dossier has a resolution and a closing time (R10);
- an open dossier always has a next deadline: none stalls silently (R2);
- the first response, once given, never moves (R3);
- a refused command raises the rule's code and changes nothing; the input state is never
  modified (a new state is returned);
- every effect has its own step, and each published event's `seq` is above the last one;

and the same inputs give the same outputs.

Facts of a service reach a dossier only once it was handed over to that service (the bridge
forwards the facts of a service's own tickets), so facts are drawn among those of the
dossier's branch, plus those of other branches (a dossier classified again) and unknown ones.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistance.business_time import DEFAULT_CALENDAR
from assistance.events import Event
from services.dossier import domain, process
from services.dossier.domain import Refused
from services.dossier.process import (
    FEATURES,
    FOLLOW_UP_CYCLES,
    STATUSES,
    Command,
    Context,
    EffectFailed,
    HandOverAnswered,
    MailSent,
    NotifyStaff,
    Open,
    Outcome,
    Publish,
    SendMail,
)
from services.dossier.state import (
    Actor,
    ActorCmd,
    CloseCmd,
    CustomerMessage,
    DiagnosisCmd,
    DossierState,
    MessageCmd,
    ReopenCmd,
    ScreenShareCmd,
    WorkaroundCmd,
)
from tests.workflows.harness import CUSTOMER, OTHER_TECH, TECH, opening

ADMIN = Actor(user_id="44444444-4444-4444-4444-444444444444", role="admin", name="Alice")
DEVELOPER = Actor(user_id="55555555-5555-5555-5555-555555555555", role="developer", name="Dev")
# weighted towards what the rules accept, so that sequences go far (diagnosis, hand-over,
# closure, reopening) while every refusal is still drawn
ACTORS = st.sampled_from([TECH, TECH, TECH, TECH, OTHER_TECH, ADMIN, CUSTOMER, CUSTOMER, DEVELOPER])
TEXTS = st.sampled_from(["Voici la marche à suivre.", "Cache vidé.", "Version 5.2 ?", "", "  "])
MAYBE_TEXT = st.sampled_from([None, "", "Exportez mois par mois.", "Aucun pour l'instant."])
WAITING_FOR = {
    "new": {None},
    "in_progress": {None},
    "waiting_customer": {"customer"},
    "waiting_service": set(domain.HANDED_OVER.values()),
    "resolved": {"customer"},
    "closed": {None},
}
FACTS = {
    "advanced_usage": [
        "training.appointment.booked",
        "training.appointment.rescheduled",
        "training.appointment.cancelled",
        "training.appointment.held",
        "training.appointment.missed",
        "training.booking.unavailable",
    ],
    "bug": [
        "bugs.bug.reported",
        "bugs.bug.linked",
        "bugs.bug.reproduced",
        "bugs.bug.diagnosed",
        "bugs.bug.fix_completed",
        "bugs.bug.released",
        "bugs.bug.not_reproducible",
    ],
    "evolution": [
        "evolutions.request.recorded",
        "evolutions.request.reviewed",
        "evolutions.request.accepted",
        "evolutions.request.rejected",
    ],
}


# mostly the dossier's own branch (picks below its count of kinds), sometimes another's
PICKS = st.one_of(st.integers(0, 7), st.integers(0, 7), st.integers(0, 30))


@dataclass(frozen=True)
class Wait:
    """Time passes; the deadlines due meanwhile fall due, in order."""

    minutes: int


@dataclass(frozen=True)
class Fact:
    """A fact of the dossier's branch (the n-th of its service's kinds), or an unknown one."""

    pick: int
    id: str
    data: dict[str, Any]


def _command(name: str) -> st.SearchStrategy[Command]:
    cmd: st.SearchStrategy[Any]
    if name in ("take", "release", "confirm"):
        cmd = st.builds(ActorCmd, actor=ACTORS)
    elif name == "diagnose":
        kinds = st.sampled_from([*domain.KINDS, *domain.KINDS, "autre"])
        cmd = st.builds(DiagnosisCmd, actor=ACTORS, kind=kinds, context=TEXTS, need=TEXTS)
    elif name in ("respond", "note", "request_information"):
        cmd = st.builds(MessageCmd, actor=ACTORS, text=TEXTS)
    elif name == "screen_share":
        cmd = st.builds(ScreenShareCmd, actor=ACTORS, link=st.just("https://visio/1"))
    elif name == "record_workaround":
        cmd = st.builds(WorkaroundCmd, actor=ACTORS, text=MAYBE_TEXT, none_reason=MAYBE_TEXT)
    elif name == "close":
        cmd = st.builds(CloseCmd, actor=ACTORS, resolution=TEXTS)
    else:
        cmd = st.builds(ReopenCmd, actor=ACTORS, reason=TEXTS)
    return cmd.map(lambda c: Command(name, c))


COMMANDS = st.one_of(*(_command(name) for name in process.COMMANDS))
# what the technician and the customer would do next: sequences then reach every branch
LIKELY = st.sampled_from(
    [
        Command("take", ActorCmd(actor=TECH)),
        *(
            Command(
                "diagnose", DiagnosisCmd(actor=TECH, kind=kind, context="12 postes", need="FEC")
            )
            for kind in domain.KINDS
        ),
        Command("respond", MessageCmd(actor=TECH, text="Voici.")),
        Command("request_information", MessageCmd(actor=TECH, text="Quelle version ?")),
        Command("record_workaround", WorkaroundCmd(actor=TECH, text="Mois par mois.")),
        Command("close", CloseCmd(actor=TECH, resolution="Résolu ensemble.")),
        Command("confirm", ActorCmd(actor=CUSTOMER)),
        Command("reopen", ReopenCmd(actor=CUSTOMER, reason="Encore.")),
    ]
)
CUSTOMER_MESSAGES = st.builds(
    CustomerMessage,
    text=st.just("Toujours pas."),
    author_email=st.just("claire.martin@dupont-sa.fr"),
    via=st.sampled_from(["web", "mail"]),
    message_id=st.sampled_from([None, "<m1@client>", "<m2@client>"]),
)
FACT_DATA = st.fixed_dictionaries(
    {
        "bug_id": st.just("bug-7"),
        "version": st.sampled_from(["5.3.1", "5.2.9"]),
        "starts_at": st.sampled_from(["", "2032-03-02T10:00:00+01:00", "demain"]),
        "notes": st.sampled_from([None, "Journaux paramétrés."]),
        "reason": st.sampled_from([None, "Prévue en 6.0."]),
    }
)
STEPS = st.one_of(
    COMMANDS,
    LIKELY,
    LIKELY,
    st.builds(Wait, minutes=st.integers(0, 4 * 24 * 60)),
    st.builds(Wait, minutes=st.integers(0, 120)),
    CUSTOMER_MESSAGES,
    st.builds(Fact, pick=PICKS, id=st.sampled_from(["f1", "f2", "f3"]), data=FACT_DATA),
    st.builds(Fact, pick=PICKS, id=st.sampled_from(["f4", "f5"]), data=FACT_DATA),
    st.builds(MailSent, message_id=st.sampled_from(["<a@manao>", "<b@manao>"])),
    st.builds(
        HandOverAnswered,
        service=st.sampled_from(["training", "bugs", "evolutions"]),
        answer=st.just({"ok": True}),
    ),
    st.builds(EffectFailed, activity=st.sampled_from(["notify_staff", "x"]), error=st.just("boom")),
)
RECEIVED = st.datetimes(
    min_value=datetime(2032, 3, 1),
    max_value=datetime(2032, 12, 31),
    timezones=st.just(DEFAULT_CALENDAR.tz),
)


def _fact(state: DossierState, fact: Fact) -> Event | None:
    kinds = FACTS.get(state.kind or "", [])
    if not state.handover_attempt or not kinds:
        return None  # not handed over: no service knows this dossier
    # mostly the branch's own facts; sometimes another branch's (a dossier classified again
    # after its hand-over still hears of its first ticket), or an unknown one
    others = [k for branch in FACTS.values() for k in branch]
    if fact.pick < len(kinds):
        kind = kinds[fact.pick]
    elif fact.pick - len(kinds) < len(others):
        kind = others[fact.pick - len(kinds)]
    else:
        kind = "bugs.other.happened"
    return Event(id=f"{fact.id}:{kind}", type=kind, data=dict(fact.data))


class Run:
    """The machine driven as the workflow drives it, checking every step."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.now = ctx.opening.received_at
        self.state = DossierState()
        self.trace: list[tuple[DossierState, list[Any]]] = []
        self.step(Open())

    def step(self, message: process.Message) -> None:
        before = copy.deepcopy(self.state)
        try:
            if isinstance(message, Command):
                try:
                    process.check(self.state, message)
                    allowed = True
                except Refused:
                    allowed = False
            outcome = process.apply(self.state, message, self.now, self.ctx)
        except Refused as refused:
            assert refused.code and refused.message
            assert isinstance(message, Command) and not allowed  # the validator refuses too
            assert self.state == before  # a refused command changes nothing
            self.trace.append((self.state, [refused.code]))
            return
        if isinstance(message, Command):
            assert allowed
        assert self.state == before  # a new state is returned, the old one kept
        self.check(before, outcome)
        self.state = outcome.state
        self.trace.append((outcome.state, outcome.effects))

    def wait(self, minutes: int) -> None:
        until = self.now + timedelta(minutes=minutes)
        for _ in range(100):
            deadline = process.next_deadline(self.state, self.ctx)
            if deadline is None or deadline.at > until:
                break
            self.now = max(self.now, deadline.at)
            self.step(deadline.timer)
        else:
            pytest.fail("deadlines keep falling due without the dossier moving on")
        self.now = until

    def check(self, before: DossierState, outcome: Outcome) -> None:
        s = outcome.state
        assert s.status in STATUSES
        assert s.waiting_for in WAITING_FOR[s.status], (s.status, s.waiting_for)
        if s.status == "closed":
            assert s.resolution and s.resolution.strip()
            assert s.closed_at is not None
        elif FOLLOW_UP_CYCLES in self.ctx.features:
            assert process.next_deadline(s, self.ctx) is not None  # R2: never stalls
        if before.first_responded_at is not None:
            assert s.first_responded_at == before.first_responded_at  # R3: never moves
        steps = [_step(e) for e in outcome.effects if not isinstance(e, process.HandOverTo)]
        assert steps == sorted(set(steps)) and all(n > before.step for n in steps)
        assert s.step == (steps[-1] if steps else before.step)
        seqs = [e.event.data["seq"] for e in outcome.effects if isinstance(e, Publish)]
        assert all(n > before.last_event for n in seqs)
        assert s.last_event == (seqs[-1] if seqs else before.last_event)
        assert outcome.changed or not seqs


def _step(effect: Publish | SendMail | NotifyStaff) -> int:
    """An effect's step (a hand-over comes with its `handed_over` event's)."""
    if isinstance(effect, Publish):
        return int(effect.event.data["seq"])
    if isinstance(effect, SendMail):
        return effect.order.step
    return effect.notice.step


def drive(
    received: datetime, channel: str, steps: list[Any], features: frozenset[str] = FEATURES
) -> Run:
    o = opening(received, channel, technician_id=TECH.user_id, technician_name=TECH.name)
    o.dossier_id = "00000000-0000-0000-0000-000000000042"
    run = Run(Context(o, DEFAULT_CALENDAR, features))
    for item in steps:
        if isinstance(item, Wait):
            run.wait(item.minutes)
        elif isinstance(item, Fact):
            event = _fact(run.state, item)
            if event is not None:
                run.step(event)
        else:
            run.step(item)
    return run


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    received=RECEIVED,
    channel=st.sampled_from(["web", "mail", "phone"]),
    steps=st.lists(STEPS, min_size=10, max_size=60),
)
def test_no_reachable_state_breaks_a_rule_and_the_same_inputs_give_the_same_outputs(
    received: datetime, channel: str, steps: list[Any]
) -> None:
    first = drive(received, channel, steps)
    again = drive(received, channel, steps)
    assert again.trace == first.trace


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    received=RECEIVED,
    features=st.frozensets(st.sampled_from(sorted(FEATURES))),
    steps=st.lists(STEPS, min_size=10, max_size=40),
)
def test_dossiers_running_older_code_keep_the_rules_too(
    received: datetime, features: frozenset[str], steps: list[Any]
) -> None:
    """The branches of the changes a running dossier may not have (`workflow.patched`):
    before `follow-up-cycles` a dossier could stall after an escalation (why it came)."""
    first = drive(received, "web", steps, features)
    again = drive(received, "web", steps, features)
    assert again.trace == first.trace


def test_every_update_of_the_workflow_is_a_command_of_the_process() -> None:
    """The machine knows every update of the workflow, and refuses what it does not know."""
    from temporalio import workflow

    from workflows.dossier import DossierWorkflow

    updates = workflow._Definition.must_from_class(DossierWorkflow).updates
    assert set(updates) == set(process.COMMANDS)
    with pytest.raises(Refused) as refused:
        process.check(DossierState(), Command("archive", ActorCmd(actor=TECH)))
    assert refused.value.code == "unknown_command"
