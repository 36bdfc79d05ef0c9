"""What administrators read: a French label for each kind of stuck work (never a code name)."""

from __future__ import annotations

SOURCES = {
    "consumer": "Message non traité",
    "outbox": "Envoi non abouti",
    "activity": "Action automatique d'un dossier",
    "workflow": "Suivi de dossier",
}

CONSUMERS = {
    "dossier-projection": "mise à jour du dossier",
    "dossier-intake": "enregistrement d'une demande",
    "dossier-bridge-training": "nouvelle de la formation transmise au dossier",
    "dossier-bridge-bugs": "nouvelle des bugs transmise au dossier",
    "dossier-bridge-evolutions": "nouvelle des évolutions transmise au dossier",
    "training-dossiers": "historique des clients pour la formation",
    "bugs-releases": "versions publiées, pour les bugs",
    "bugs-dossiers": "dossiers suivis par les bugs",
}

OUTBOX = {
    ("intake", "publish"): "annonce d'une nouvelle demande",
    ("intake", "start_dossier"): "démarrage du suivi d'un dossier",
    ("training", "publish"): "nouvelle de la formation",
    ("training", "training_mail"): "mail de la formation",
    ("training", "training_invitation"): "invitation à une formation",
    ("bugs", "publish"): "nouvelle des bugs",
    ("evolutions", "publish"): "nouvelle des évolutions",
    ("operations", "mail"): "mail aux administrateurs",
    ("dossier", "publish"): "historique d'un dossier",
    ("dossier", "dossier_mail"): "mail d'un dossier (au client ou à l'équipe)",
    ("operations", "publish"): "historique d'un dossier",
}

ACTIVITIES = {
    "publish_dossier_event": "mise à jour de l'historique du dossier",
    "send_dossier_mail": "mail au client",
    "notify_staff": "avis à l'équipe",
    "hand_over": "transmission au service concerné",
    "record_dossier_step": "enregistrement d'une étape du dossier (historique, mails, avis)",
    "personal_data_retention_batch": "effacement des données personnelles (rétention RGPD)",
}


def label(source: str, name: str, kind: str | None = None) -> str:
    """« Envoi non abouti : mail de la formation »."""
    what: str | None
    if source == "consumer":
        what = CONSUMERS.get(name)
    elif source == "outbox":
        what = OUTBOX.get((name, kind or "")) or OUTBOX.get((name, "publish"))
    else:
        what = ACTIVITIES.get(kind or name)
    head = SOURCES.get(source, "Travail bloqué")
    return f"{head} : {what}" if what else head


def consumer_label(name: str) -> str:
    return CONSUMERS.get(name, "traitement interne")
