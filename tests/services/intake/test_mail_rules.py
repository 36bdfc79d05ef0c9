"""Mail rules, pure (R1): loops, idempotency keys, quoted history, software, descriptions."""

from __future__ import annotations

import pytest

from services.intake.mail.parse import parse
from services.intake.mail.rules import (
    MAX_DESCRIPTION,
    choose_software,
    content_hash,
    dedupe_key,
    description_of,
    description_of_text,
    loop_marker,
    strip_quoted,
    subject_of,
)
from tests.services.intake.mail_helpers import build_mail, corpus

SOFTWARES = {"manao-compta": "Manao Compta", "manao-paie": "Manao Paie"}


@pytest.mark.parametrize(
    ("name", "envelope_from", "marker"),
    [
        ("auto_reply.eml", "claire.martin@dupont-sa.fr", "auto_submitted"),
        ("precedence_bulk.eml", "news@exemple-lettre.fr", "bulk"),
        ("mailing_list.eml", "marc@exemple-asso.fr", "mailing_list"),
        ("null_sender_bounce.eml", "", "bounce"),
        ("dsn_bounce.eml", "", "auto_submitted"),
        ("fr_encoded_words.eml", "frederic.leger@dupont-sa.fr", None),
        ("quoted_printable_latin1.eml", None, None),
    ],
)
def test_loop_markers(name: str, envelope_from: str | None, marker: str | None) -> None:
    assert loop_marker(parse(corpus(name)), envelope_from) == marker


def test_null_envelope_sender_alone_is_a_loop_marker() -> None:
    mail = parse(build_mail("robot@exemple-client.fr"))
    assert loop_marker(mail, "") == "null_sender"
    assert loop_marker(mail, "robot@exemple-client.fr") is None


def test_auto_submitted_no_is_a_person() -> None:
    mail = parse(build_mail("a@exemple-client.fr", headers={"Auto-Submitted": "no"}))
    assert loop_marker(mail, "a@exemple-client.fr") is None


@pytest.mark.parametrize(
    ("sender", "name", "subject"),
    [
        ("ietf-request@ietf.org", "", "Votre abonnement"),
        ("owner-compta@listes.exemple.fr", "", "Modération"),
        ("compta-bounces@listes.exemple.fr", "", "Message en attente"),
        ("MAILER-DAEMON@mx.exemple.fr", "", "Hello"),
        ("postmaster@mx.exemple.fr", "", "Hello"),
        ("robot@mx.exemple.fr", "Mail Delivery Subsystem", "Hello"),
        ("robot@mx.exemple.fr", "", "Undelivered Mail Returned to Sender"),
        ("robot@mx.exemple.fr", "", "Delivery Status Notification (Failure)"),
        ("robot@mx.exemple.fr", "", "Non remis : Export FEC"),
    ],
)
def test_list_and_daemon_senders_without_markers_get_nothing(
    sender: str, name: str, subject: str
) -> None:
    mail = parse(build_mail(sender, subject, "Texte.", name=name))
    assert loop_marker(mail, sender) == "daemon_sender"


def test_people_are_not_taken_for_daemons() -> None:
    for sender, subject in [
        ("request@dupont-sa.fr", "Export FEC"),
        ("claire.martin@dupont-sa.fr", "Mail non livré au client : que faire ?"),
        ("requests-team@dupont-sa.fr", "Remise de fin d'année"),
    ]:
        assert loop_marker(parse(build_mail(sender, subject, "Texte.")), sender) is None


def test_dedupe_key_is_the_message_id_else_a_hash_without_relay_headers() -> None:
    with_id = corpus("fr_encoded_words.eml")
    assert dedupe_key(parse(with_id), with_id) == "mid:<CAF1x7Zq@mail.dupont-sa.fr>"
    raw = corpus("missing_message_id.eml")
    relayed_again = (
        b"Received: from other.relay by mx.manao.eu; Fri, 6 Mar 2026 08:05:00 +0100\r\n"
        b"Delivered-To: assistance@manao.eu\r\n" + raw
    )
    assert dedupe_key(parse(raw), raw) == f"sha256:{content_hash(raw)}"
    assert content_hash(raw) == content_hash(relayed_again)
    assert content_hash(raw) != content_hash(raw.replace(b"Message-ID", b"Message-Id."))
    assert content_hash(raw) != content_hash(raw + b"P.S. autre texte\r\n")


def test_a_very_long_message_id_is_hashed_into_the_key() -> None:
    raw = build_mail("a@exemple-client.fr", message_id=f"<{'x' * 800}@exemple-client.fr>")
    key = dedupe_key(parse(raw), raw)
    assert key.startswith("mid-sha256:")
    assert len(key) == len("mid-sha256:") + 64


def test_strip_quoted_outlook_and_gmail() -> None:
    assert strip_quoted(parse(corpus("outlook_reply.eml")).text) == (
        "Merci, l'export fonctionne maintenant.\n\nClaire"
    )
    assert strip_quoted(parse(corpus("gmail_reply.eml")).text) == "Toujours bloqué chez moi."
    assert strip_quoted("Oui.\n\nOn Mon, Mar 9, 2026 at 9:00 AM Bob <b@x.fr> wrote:\n> a") == (
        "Oui."
    )
    assert strip_quoted("Réponse\n-----Message d'origine-----\nDe : x") == "Réponse"
    assert strip_quoted("> tout est cité\n> rien de neuf") == "> tout est cité\n> rien de neuf"


def test_choose_software() -> None:
    assert choose_software("[manao-paie] Bulletin faux", [], SOFTWARES) == (
        "manao-paie",
        "Bulletin faux",
        False,
    )
    assert choose_software("Bulletin [Manao Paie] faux", [], SOFTWARES) == (
        "manao-paie",
        "Bulletin faux",
        False,
    )
    assert choose_software("Question", ["assistance+manao-paie@manao.eu"], SOFTWARES) == (
        "manao-paie",
        "Question",
        False,
    )
    assert choose_software("Question", [], SOFTWARES, "manao-paie") == (
        "manao-paie",
        "Question",
        False,
    )
    assert choose_software("[D-2026-000001] Question", [], SOFTWARES) == (
        "manao-compta",
        "[D-2026-000001] Question",
        True,
    )
    assert choose_software("Question", [], {}) == (None, "Question", False)


def test_description_names_attachments_and_stays_within_the_limit() -> None:
    mail = parse(corpus("attachments.eml"))
    assert description_of(mail) == (
        "Ci-joint les documents.\n\nPièces jointes : facture été.pdf (1 Ko), releve.pdf (1 Ko), "
        "page.html (1 Ko), Erreur de paie transmise.eml (1 Ko)"
    )
    # an image embedded in the HTML body is not listed
    assert description_of(parse(corpus("multipart_alternative.eml"))) == (
        "Voici la capture de l'erreur affichée."
    )
    long = description_of_text("x" * 30_000, [("a.pdf", 3 * 1024 * 1024, "too_big", False)])
    assert len(long) == MAX_DESCRIPTION
    assert long.endswith(
        "[… texte tronqué ; le mail complet est conservé]\n\n"
        "Pièces jointes : a.pdf (3.0 Mo, non conservée : trop volumineuse)"
    )
    assert description_of_text("  ") == "(message sans texte)"


def test_subject_of() -> None:
    assert subject_of("  Re:\tExport \n FEC ") == "Re: Export FEC"
    assert subject_of("") == "(sans objet)"
    assert subject_of("é" * 300) == "é" * 199 + "…"
