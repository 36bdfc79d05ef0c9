"""Synthetic history for the scale benchmark: closed dossiers written straight into the dossier
read model (`dossier.dossiers`, `dossier.timeline`, `dossier.breaches`) with SQL
`generate_series`, and varied deposits for the dossiers opened through the real path.

Every synthetic row is labelled: reference `SYN-0000001`…, `details.synthetic = true`, event
ids `SYN-…:seq`, requesters at `synthetique.invalid`. No workflow exists for them; they stand
for years of closed dossiers that the queue, a dossier, the dashboard and the search must read
around. Their texts are French support texts on the demo softwares, one topic per dossier
(subject, description, answer and resolution agree), so a search matches a realistic share.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

PREFIX = "SYN-"
BATCH = 50_000  # rows per INSERT statement (one transaction each): a progress line per batch
SPAN = timedelta(days=3 * 365)  # the history the closed dossiers are spread over
QUIET = timedelta(days=5)  # the newest synthetic deposit is this old: every one is closed by now
TIMELINE_PER_DOSSIER = 3  # received, the response, the closure
TARGET = timedelta(hours=4)  # their first-response commitment (the default one)
LATE_ONE_IN = 13  # about one synthetic dossier in 13 got its first response late (a breach)

# (software, kind, subject, description, response, resolution)
TOPICS: list[tuple[str, str, str, str, str, str]] = [
    (
        "manao-compta", "bug", "Export FEC impossible",
        "L'export du fichier des écritures comptables s'arrête à 50 % avec une erreur.",
        "Le blocage vient d'une écriture sans date de pièce ; corrigez-la puis relancez l'export.",
        "Export FEC relancé avec succès après correction de l'écriture.",
    ),
    (
        "manao-compta", "usage", "Rapprochement bancaire qui ne tombe pas juste",
        "Le rapprochement bancaire de mars affiche un écart de quelques euros.",
        "L'écart correspond à des frais bancaires non saisis ; voici comment les pointer.",
        "Frais bancaires saisis, rapprochement équilibré.",
    ),
    (
        "manao-compta", "usage", "Déclaration de TVA : montant intracommunautaire",
        "La TVA intracommunautaire n'apparaît pas sur la déclaration CA3 du trimestre.",
        "Les comptes 4452 doivent porter le code TVA autoliquidée ; la fiche est en pièce jointe.",
        "Codes TVA corrigés, déclaration CA3 conforme.",
    ),
    (
        "manao-compta", "advanced_usage", "Clôture d'exercice et reports à nouveau",
        "Nous ne savons pas générer les reports à nouveau après la clôture de l'exercice.",
        "Une formation d'une heure sur la clôture vous est proposée, avec le guide pas à pas.",
        "Formation à la clôture suivie, reports à nouveau générés.",
    ),
    (
        "manao-compta", "bug", "Lettrage automatique très lent",
        "Le lettrage automatique des comptes clients prend plus de dix minutes.",
        "Le défaut est connu et corrigé dans la version 5.2 ; en attendant, lettrez par période.",
        "Version 5.2 installée, lettrage en quelques secondes.",
    ),
    (
        "manao-compta", "usage", "Import des relevés bancaires au format CFONB",
        "L'import du relevé bancaire CFONB refuse le fichier envoyé par la banque.",
        "Le fichier contient une ligne d'en-tête en trop ; le format attendu est décrit ici.",
        "Relevé importé après suppression de la ligne d'en-tête.",
    ),
    (
        "manao-compta", "evolution", "Demande : export des immobilisations vers Excel",
        "Nous aimerions exporter le tableau des immobilisations au format Excel.",
        "Votre demande est transmise à la revue produit, qui vous répondra.",
        "Évolution retenue pour une prochaine version, demande close.",
    ),
    (
        "manao-compta", "usage", "Mot de passe oublié pour l'accès comptable",
        "Une comptable n'arrive plus à se connecter : mot de passe oublié et compte bloqué.",
        "Le compte est débloqué ; un lien de réinitialisation lui a été envoyé.",
        "Accès rétabli après réinitialisation du mot de passe.",
    ),
    (
        "manao-compta", "bug", "Balance âgée fausse après mise à jour",
        "Depuis la mise à jour, la balance âgée des fournisseurs double certaines factures.",
        "Un correctif est disponible ; le contournement consiste à recalculer les échéances.",
        "Correctif appliqué, balance âgée juste.",
    ),
    (
        "manao-compta", "usage", "Saisie des notes de frais",
        "Comment saisir une note de frais avec plusieurs taux de TVA ?",
        "Utilisez la ventilation multi-taux de la saisie guidée, expliquée dans la documentation.",
        "Note de frais saisie avec la ventilation multi-taux.",
    ),
    (
        "manao-compta", "advanced_usage", "Paramétrage de la comptabilité analytique",
        "Nous voulons répartir les charges par établissement en comptabilité analytique.",
        "Une session de formation sur les axes analytiques est planifiée avec votre équipe.",
        "Axes analytiques paramétrés pendant la formation.",
    ),
    (
        "manao-compta", "usage", "Facture fournisseur en double",
        "Une facture fournisseur a été importée deux fois depuis la GED.",
        "Supprimez le doublon depuis le journal des achats ; l'import ne recommencera pas.",
        "Doublon supprimé, journal des achats à jour.",
    ),
    (
        "manao-paie", "bug", "Bulletin de paie : cotisation retraite erronée",
        "Le taux de cotisation retraite complémentaire est faux sur les bulletins de janvier.",
        "Le taux 2026 n'était pas chargé ; la mise à jour des taux règle le calcul.",
        "Taux mis à jour, bulletins recalculés.",
    ),
    (
        "manao-paie", "usage", "Déclaration DSN rejetée",
        "La DSN mensuelle est rejetée par net-entreprises avec une anomalie bloquante.",
        "L'anomalie vient d'un numéro de sécurité sociale incomplet ; corrigez la fiche salarié.",
        "DSN déposée et acceptée après correction.",
    ),
    (
        "manao-paie", "usage", "Solde de tout compte d'un salarié",
        "Comment éditer le solde de tout compte et l'attestation employeur ?",
        "Le menu Sorties propose l'édition des deux documents ; voici la marche à suivre.",
        "Documents de sortie édités.",
    ),
    (
        "manao-paie", "advanced_usage", "Gestion des congés payés sur plusieurs établissements",
        "Les compteurs de congés payés ne suivent pas les mutations entre établissements.",
        "Une formation sur les transferts de compteurs vous est proposée.",
        "Compteurs repris pendant la formation.",
    ),
    (
        "manao-paie", "bug", "Prélèvement à la source : taux non appliqué",
        "Le taux personnalisé de prélèvement à la source n'est pas appliqué à deux salariés.",
        "Le retour CRM n'a pas été intégré ; relancez l'intégration du flux.",
        "Flux intégré, taux appliqués sur la paie suivante.",
    ),
    (
        "manao-paie", "usage", "Virement des salaires : fichier SEPA",
        "Le fichier SEPA des virements de salaires est refusé par la banque.",
        "Le BIC de l'émetteur manque dans les paramètres société ; complétez-le.",
        "Fichier SEPA accepté par la banque.",
    ),
    (
        "manao-paie", "evolution", "Demande : bulletin de paie dématérialisé",
        "Nous souhaitons envoyer les bulletins de paie dans un coffre-fort numérique.",
        "La demande rejoint la revue produit des évolutions de la paie.",
        "Évolution planifiée, demande close.",
    ),
    (
        "manao-paie", "usage", "Heures supplémentaires mal majorées",
        "Les heures supplémentaires du week-end ne sont pas majorées à 50 %.",
        "La rubrique doit utiliser le profil horaire week-end ; voici le réglage.",
        "Rubrique corrigée, majoration appliquée.",
    ),
]  # fmt: skip

# one of them is added to each subject, another to each description: many distinct texts
CONTEXTS = [
    "depuis la mise à jour",
    "sur le poste de l'accueil",
    "pour le dossier de Lyon",
    "en fin de mois",
    "pour la société mère",
    "sur le serveur TSE",
    "depuis ce matin",
    "pour l'établissement de Nantes",
    "en multi-utilisateur",
    "sur la base de test",
    "pour le cabinet de Lille",
]
DETAILS = [
    "Le message d'erreur parle d'un délai dépassé.",
    "Nous avons redémarré le poste sans changement.",
    "Le problème touche trois utilisateurs.",
    "Une capture d'écran suit par mail.",
    "C'est urgent pour la clôture mensuelle.",
    "Cela fonctionnait le mois dernier.",
    "Le support informatique interne n'a pas trouvé la cause.",
]
# fmt: off
FIRST_NAMES = ["Claire", "Julien", "Sophie", "Karim", "Nathalie", "Thomas", "Inès", "Marc",
               "Camille", "Hugo", "Léa", "Olivier", "Aurélie", "Mehdi", "Sandrine", "Paul"]
LAST_NAMES = ["Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Laurent", "Garcia", "Roux",
              "Fontaine", "Chevalier", "Mercier", "Blanc", "Guérin", "Faure"]
# fmt: on
CHANNELS = ["web", "web", "web", "mail", "mail", "phone"]  # a realistic mix


def _pick(array: str, step: int, row: str = "n") -> str:
    """The SQL element of `array` for row number `row` (a bigint), strided by `step`."""
    return f"({array})[(1 + ({row} * {step}) % cardinality({array}))::int]"


# a dossier's topic, from its number: the same in every table
TOPIC_STEP = 7919
# DOSSIERS_SQL's parameters, in order (`dossier_params` gives their values)
DOSSIER_PARAMS = (
    "first", "last", "count", "until", "span_s", "target", "softwares", "kinds", "subjects",
    "descriptions", "resolutions", "contexts", "details", "names", "emails", "channels",
    "technician_id", "technician_name",
)  # fmt: skip
_P = {name: f"${number}" for number, name in enumerate(DOSSIER_PARAMS, start=1)}


def _col(name: str, step: int) -> str:
    return _pick(f"{_P[name]}::text[]", step)


_RESPONDED = f"r.received_at + make_interval(mins => ((n * 37) % {LATE_ONE_IN * 20})::int)"

DOSSIERS_SQL = f"""
INSERT INTO dossier.dossiers (id, reference, status, kind, channel, software, subject,
    description, requester_email, requester_name, received_at, first_response_due,
    first_responded_at, technician_id, technician_name, closed_at, resolution, details,
    last_seq, updated_at)
SELECT md5('{PREFIX}' || n)::uuid,
       '{PREFIX}' || lpad(n::text, 7, '0'),
       'closed',
       {_col("kinds", TOPIC_STEP)},
       {_col("channels", 1)},
       {_col("softwares", TOPIC_STEP)},
       {_col("subjects", TOPIC_STEP)} || ' ' || {_col("contexts", 31)},
       {_col("descriptions", TOPIC_STEP)} || ' ' || {_col("details", 17)},
       {_col("emails", 53)},
       {_col("names", 53)},
       r.received_at,
       r.received_at + {_P["target"]}::interval,
       {_RESPONDED},
       {_P["technician_id"]}::uuid,
       {_P["technician_name"]}::text,
       {_RESPONDED} + make_interval(hours => (1 + (n * 13) % 72)::int),
       {_col("resolutions", TOPIC_STEP)},
       '{{"synthetic": true}}'::jsonb,
       {TIMELINE_PER_DOSSIER},
       now()
FROM generate_series({_P["first"]}::bigint, {_P["last"]}::bigint) AS n
CROSS JOIN LATERAL (
    SELECT {_P["until"]}::timestamptz
           - make_interval(secs => {_P["span_s"]}::float8 * n / {_P["count"]}::int) AS received_at
) r
"""

# the three entries of each synthetic dossier, from its own row (every text the search reads)
TIMELINE_SQL = f"""
INSERT INTO dossier.timeline (event_id, dossier_id, at, kind, visibility, author, text, data,
    seq)
SELECT d.reference || ':' || e.seq, d.id, e.at, e.kind, 'customer', e.author, e.text,
       '{{"synthetic": true}}'::jsonb, e.seq
FROM dossier.dossiers d
CROSS JOIN LATERAL (VALUES
    (0, d.received_at, 'received', d.requester_name, d.description),
    (1, d.first_responded_at, 'response', d.technician_name,
        {_pick("$3::text[]", TOPIC_STEP, "substring(d.reference FROM 5)::bigint")}),
    (2, d.closed_at, 'closed', d.technician_name, 'Dossier clos : ' || d.resolution)
) AS e (seq, at, kind, author, text)
WHERE d.reference BETWEEN $1 AND $2
"""

BREACHES_SQL = """
INSERT INTO dossier.breaches (dossier_id, reference, software, due, breached_at, technician_id)
SELECT id, reference, software, first_response_due, first_response_due, technician_id
FROM dossier.dossiers
WHERE reference BETWEEN $1 AND $2
  AND first_responded_at > first_response_due
"""


@dataclass(frozen=True)
class Staff:
    """The technician every synthetic dossier was handled by."""

    id: uuid.UUID
    name: str


def batches(count: int, size: int = BATCH) -> list[tuple[int, int]]:
    """Inclusive ranges of row numbers 1..count, `size` at most each."""
    if count < 0 or size < 1:
        raise ValueError(f"count must be ≥ 0 and size ≥ 1, got {count} and {size}")
    return [(first, min(first + size - 1, count)) for first in range(1, count + 1, size)]


def reference(number: int) -> str:
    """The reference of synthetic dossier `number`, as DOSSIERS_SQL writes it."""
    return f"{PREFIX}{number:07d}"


def people() -> tuple[list[str], list[str]]:
    """Requesters' names and addresses (at a reserved domain), in matching order."""
    names = [f"{first} {last}" for last in LAST_NAMES for first in FIRST_NAMES]
    emails = [
        f"{first.lower()}.{last.lower()}@synthetique.invalid".translate(_ASCII)
        for last in LAST_NAMES
        for first in FIRST_NAMES
    ]
    return names, emails


_ASCII = str.maketrans("éèêëàâîïôöûüç", "eeeeaaiioouuc")


def dossier_params(
    first: int, last: int, count: int, until: datetime, staff: Staff, span: timedelta = SPAN
) -> tuple[Any, ...]:
    """The parameters of DOSSIERS_SQL for rows first..last of `count`, the newest received at
    `until` and the oldest `span` before it."""
    if until.tzinfo is None:
        raise ValueError("until must be an aware datetime")
    if not 1 <= first <= last <= count:
        raise ValueError(f"rows {first}..{last} are not within 1..{count}")
    names, emails = people()
    softwares, kinds, subjects, descriptions, _, resolutions = (
        list(column) for column in zip(*TOPICS, strict=True)
    )
    values = {
        "first": first,
        "last": last,
        "count": count,
        "until": until,
        "span_s": span.total_seconds(),
        "target": TARGET,
        "softwares": softwares,
        "kinds": kinds,
        "subjects": subjects,
        "descriptions": descriptions,
        "resolutions": resolutions,
        "contexts": CONTEXTS,
        "details": DETAILS,
        "names": names,
        "emails": emails,
        "channels": CHANNELS,
        "technician_id": staff.id,
        "technician_name": staff.name,
    }
    return tuple(values[name] for name in DOSSIER_PARAMS)


async def insert_closed(
    pool: asyncpg.Pool,
    count: int,
    now: datetime,
    staff: Staff,
    progress: Callable[[int, int], None] = lambda done, count: None,
) -> None:
    """`count` closed synthetic dossiers, their timelines and breaches, batch by batch; then the
    planner's statistics are refreshed."""
    until = now - QUIET
    responses = [topic[4] for topic in TOPICS]
    for first, last in batches(count):
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(DOSSIERS_SQL, *dossier_params(first, last, count, until, staff))
            bounds = reference(first), reference(last)
            await conn.execute(TIMELINE_SQL, *bounds, responses)
            await conn.execute(BREACHES_SQL, *bounds)
        progress(last, count)
    async with pool.acquire() as conn:
        await conn.execute("ANALYZE dossier.dossiers, dossier.timeline, dossier.breaches")


def deposit_body(index: int) -> dict[str, Any]:
    """A web deposit on one of the topics, for the dossiers opened through the real path."""
    software, _, subject, description, _, _ = TOPICS[(index * TOPIC_STEP) % len(TOPICS)]
    context = CONTEXTS[(index * 31) % len(CONTEXTS)]
    detail = DETAILS[(index * 17) % len(DETAILS)]
    return {
        "requester": {"email": "claire.martin@dupont-sa.fr", "name": "Claire Martin"},
        "software": software,
        "subject": f"{subject} {context}",
        "description": f"{description} {detail}",
    }


# What the read-side search asks, in turn: frequent and rare words, a phrase, a name.
SEARCHES = [
    "export FEC",
    "bulletin de paie",
    "rapprochement bancaire",
    "mot de passe",
    "TVA intracommunautaire",
    "DSN rejetée",
    "Nathalie Moreau",
    "immobilisations Excel",
]
