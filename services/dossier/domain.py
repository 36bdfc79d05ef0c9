"""Dossier rules, pure: who may do what when (R2, R5–R10), and the queue order (R4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from assistance import french
from assistance.business_time import BusinessCalendar
from services.dossier.state import Actor, DossierState

KINDS = ("usage", "advanced_usage", "bug", "evolution")
KIND_LABELS = {
    "usage": "question d'utilisation",
    "advanced_usage": "usage avancé (formation)",
    "bug": "bug",
    "evolution": "demande d'évolution",
}
STAFF_ROLES = ("technician", "admin")
OPEN = ("new", "in_progress", "waiting_customer", "waiting_service", "resolved")
# Branches that hand over to another service (R7–R9), and what the dossier then waits for.
HANDED_OVER = {"advanced_usage": "training", "bug": "bug_fix", "evolution": "evolution_decision"}


class Refused(Exception):
    """A command refused by the rules, before anything is written (HTTP 409)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _open(state: DossierState) -> None:
    if state.status == "closed":
        raise Refused("dossier_closed", "Le dossier est clos : rouvrez-le d'abord.")


def _staff(actor: Actor) -> None:
    if actor.role not in STAFF_ROLES:
        raise Refused("staff_only", "Action réservée aux techniciens.")


def _owner(state: DossierState, actor: Actor) -> None:
    """R2: the technician who follows the dossier acts on it (an admin may step in)."""
    _staff(actor)
    if state.technician_id is None:
        raise Refused("not_taken", "Prenez d'abord le dossier en charge.")
    if state.technician_id != actor.user_id and actor.role != "admin":
        raise Refused(
            "taken_by_another",
            f"Le dossier est suivi par {state.technician_name or 'un autre technicien'}.",
        )


def check_take(state: DossierState, actor: Actor) -> None:
    _open(state)
    _staff(actor)
    if state.technician_id == actor.user_id:
        raise Refused("already_yours", "Vous suivez déjà ce dossier.")
    if state.technician_id is not None and actor.role != "admin":
        raise Refused(
            "taken_by_another",
            f"Le dossier est déjà suivi par {state.technician_name or 'un autre technicien'}.",
        )


def check_release(state: DossierState, actor: Actor) -> None:
    _open(state)
    _owner(state, actor)


def check_diagnosis(state: DossierState, actor: Actor, kind: str, context: str, need: str) -> None:
    """R5: context and need recorded, one of the four classes."""
    _open(state)
    _owner(state, actor)
    if kind not in KINDS:
        raise Refused("invalid_kind", f"Classification inconnue : {kind!r}.")
    if not context.strip() or not need.strip():
        raise Refused(
            "diagnosis_incomplete",
            "Le diagnostic demande le contexte de travail du client et son besoin technique.",
        )
    if state.status == "waiting_service":
        raise Refused(
            "handed_over",
            "Le dossier est confié à un autre service ; il ne peut plus être reclassé.",
        )


def check_response(state: DossierState, actor: Actor, text: str) -> None:
    if not text.strip():
        raise Refused("empty_message", "Le message est vide.")
    if actor.role == "customer":
        if state.status == "closed":
            raise Refused("dossier_closed", "Le dossier est clos : demandez sa réouverture.")
        return
    _open(state)
    _owner(state, actor)


def check_note(state: DossierState, actor: Actor, text: str) -> None:
    _staff(actor)
    if not text.strip():
        raise Refused("empty_message", "La note est vide.")


def check_information_request(state: DossierState, actor: Actor, text: str) -> None:
    _open(state)
    _owner(state, actor)
    if not text.strip():
        raise Refused("empty_message", "Précisez l'information demandée au client.")


def check_screen_share(state: DossierState, actor: Actor) -> None:
    """R6: screen sharing guides a usage question."""
    _open(state)
    _owner(state, actor)
    if state.kind not in (None, "usage"):
        raise Refused("not_usage", "Le partage d'écran sert aux questions d'utilisation.")


def check_workaround(
    state: DossierState, actor: Actor, text: str | None, none_reason: str | None
) -> None:
    """R8: a workaround first (or the reason there is none), then the developers."""
    _open(state)
    _owner(state, actor)
    if state.kind != "bug":
        raise Refused("not_a_bug", "Un contournement ne s'enregistre que pour un bug.")
    if state.workaround or state.workaround_none_reason:
        raise Refused("workaround_recorded", "Le contournement est déjà enregistré.")
    if bool(text and text.strip()) == bool(none_reason and none_reason.strip()):
        raise Refused(
            "workaround_required",
            "Donnez soit un contournement, soit la raison pour laquelle il n'y en a pas.",
        )


def check_close(state: DossierState, actor: Actor, resolution: str) -> None:
    """R10: a dossier closes only when treated, with a resolution."""
    _open(state)
    _owner(state, actor)
    if not resolution.strip():
        raise Refused("resolution_required", "La clôture demande un résumé de la résolution.")
    if state.kind is None:
        raise Refused("not_diagnosed", "Établissez le diagnostic avant de clore (R5).")


def check_confirm(state: DossierState, actor: Actor) -> None:
    if actor.role != "customer":
        raise Refused("customer_only", "Seul le client confirme la résolution.")
    if state.status != "resolved":
        raise Refused("not_resolved", "Aucune résolution n'attend votre confirmation.")


def check_reopen(state: DossierState, actor: Actor, reason: str) -> None:
    if state.status != "closed":
        raise Refused("not_closed", "Le dossier n'est pas clos.")
    if actor.role not in (*STAFF_ROLES, "customer"):
        raise Refused("forbidden", "Vous ne pouvez pas rouvrir ce dossier.")
    if not reason.strip():
        raise Refused("reason_required", "Indiquez pourquoi le dossier est rouvert.")


# --- R4: the queue -------------------------------------------------------------------------


def is_weekend_deposit(calendar: BusinessCalendar, received_at: datetime) -> bool:
    """Deposited while the centre was closed for a weekend (Friday evening to Monday
    morning, a bank-holiday Monday included): treated first when it reopens."""
    if calendar.is_open(received_at):
        return False
    reopening = calendar.next_opening(received_at)
    local = received_at.astimezone(calendar.tz)
    first_opening = calendar.opening_of_day(local.date())
    if local.date() == reopening.date() and first_opening is not None and local > first_opening:
        return False  # a lunch break, not a weekend
    day = reopening.date() - timedelta(days=1)
    while not calendar.is_business_day(day):
        if day.weekday() >= 5:
            return True
        day -= timedelta(days=1)
    return False


@dataclass(frozen=True)
class QueueEntry:
    dossier_id: str
    reference: str
    received_at: datetime
    weekend: bool


def queue_order(entries: list[QueueEntry]) -> list[QueueEntry]:
    """Weekend deposits first, then first come, first served; ties by reference, so the
    order is the same on every read."""
    return sorted(entries, key=lambda e: (not e.weekend, e.received_at, e.reference))


def queue_reason(calendar: BusinessCalendar, entry: QueueEntry) -> str:
    when = french.moment_short(entry.received_at, calendar.tz, year=False)
    if entry.weekend:
        return f"déposée pendant le week-end ({when}) : traitée en priorité lundi matin"
    return f"arrivée {when} : premier arrivé, premier servi"
