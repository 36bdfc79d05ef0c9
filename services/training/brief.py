"""The personalised brief (engagement 4, R7): what the trainer reads before the session.

Built from the hand-over (the diagnosis context and need, R5), the organisation's work context
(directory), the software and version, and the client's earlier dossiers (read from the
DOSSIER stream) and trainings (this service's own appointments). Pure: callers fetch the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistance import french
from services.training.models import Brief, BriefDossier, BriefTraining, HandOverIn

KIND_LABELS = {
    "usage": "question d'utilisation",
    "advanced_usage": "usage avancé",
    "bug": "bug",
    "evolution": "demande d'évolution",
}
STATUS_LABELS = {
    "booked": "prévue",
    "held": "effectuée",
    "missed": "manquée",
    "cancelled": "annulée",
}


def build(
    order: HandOverIn,
    organisation: dict[str, Any] | None,
    dossiers: list[dict[str, Any]],
    trainings: list[dict[str, Any]],
    names: Mapping[str, str] | None = None,
) -> Brief:
    """`names`: each software's name by its code (what the trainer reads, never a code)."""
    brief = Brief(
        organisation=(
            {
                "id": str(organisation["id"]),
                "name": organisation["name"],
                "context": organisation.get("context") or "",
            }
            if organisation
            else None
        ),
        requester={"name": order.requester_name, "email": order.requester_email},
        reference=order.reference,
        subject=order.subject,
        description=order.description,
        context=order.context,
        need=order.need,
        software=order.software,
        version=order.version,
        previous_dossiers=[BriefDossier.model_validate(d) for d in dossiers],
        previous_trainings=[BriefTraining.model_validate(t) for t in trainings],
    )
    return brief.model_copy(update={"text": render_text(brief, names or {})})


def render_text(brief: Brief, names: Mapping[str, str] | None = None) -> str:
    """The brief as French prose, for the trainer's invitation."""
    named = names or {}
    org = brief.organisation
    version = f" (version {brief.version})" if brief.version else ""
    lines = [
        f"Fiche de préparation — dossier {brief.reference}",
        "",
        f"Client : {org['name'] if org else 'organisation non identifiée'}"
        f" — {brief.requester['name']} <{brief.requester['email']}>",
    ]
    if org and org.get("context"):
        lines.append(f"Contexte de l'organisation : {org['context']}")
    lines += [
        f"Logiciel : {named.get(brief.software, brief.software)}{version}",
        f"Demande : {brief.subject}",
        "",
        f"Contexte de travail (diagnostic) : {brief.context or 'non renseigné'}",
        f"Besoin technique (diagnostic) : {brief.need or 'non renseigné'}",
    ]
    if brief.description:
        lines += ["", "Description initiale :", brief.description]
    lines += ["", "Dossiers précédents du client :"]
    lines += [_dossier_line(d, named) for d in brief.previous_dossiers] or ["  aucun"]
    lines += ["", "Formations précédentes du client :"]
    lines += [_training_line(t, named) for t in brief.previous_trainings] or ["  aucune"]
    return "\n".join(lines) + "\n"


def _dossier_line(d: BriefDossier, named: Mapping[str, str]) -> str:
    when = f" du {french.day(d.received_at)}" if d.received_at else ""
    kind = f", {KIND_LABELS.get(d.kind, d.kind)}" if d.kind else ""
    state = "clos" if d.status == "closed" else "en cours"
    software = named.get(d.software, d.software) if d.software else "?"
    line = f"  - {d.reference}{when} ({software}{kind}, {state}) : {d.subject or ''}"
    if d.resolution:
        line += f" — résolution : {d.resolution}"
    return line


def _training_line(t: BriefTraining, named: Mapping[str, str]) -> str:
    line = (
        f"  - {french.moment(t.starts_at)} avec {t.trainer_name} "
        f"({named.get(t.software, t.software)}, "
        f"{STATUS_LABELS.get(t.status, t.status)}, dossier {t.reference})"
    )
    if t.notes:
        line += f" : {t.notes}"
    return line
