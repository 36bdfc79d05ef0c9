"""Parsing that never crashes (R1), on a corpus of real-world shapes of mail.

Each corpus file (tests/services/intake/mail_corpus/, described in its README) is parsed and
checked on exact values; then random damage to those files must never raise.
"""

from __future__ import annotations

import hashlib
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake.mail.attachments import safe_filename, sniff
from services.intake.mail.bodies import html_to_text, sanitise_html
from services.intake.mail.headers import decode_bytes, decode_header_value
from services.intake.mail.parse import parse
from services.intake.mail.rules import pg_safe
from tests.services.intake.mail_helpers import CORPUS, corpus

PNG_SIZE = 70


def test_french_encoded_words_in_subject_and_name() -> None:
    mail = parse(corpus("fr_encoded_words.eml"))
    # Q and B encoded-words, folded, one UTF-8 character split across two B words
    assert mail.subject == "Problème d'export FEC — clôture décembre"
    assert mail.from_name == "Frédéric Léger"
    assert mail.from_address == "Frederic.Leger@dupont-sa.fr"  # domain lower-cased only
    assert mail.message_id == "<CAF1x7Zq@mail.dupont-sa.fr>"
    assert mail.return_path == "frederic.leger@dupont-sa.fr"
    assert mail.text == (
        "Bonjour,\n\nDepuis la clôture de décembre, l'export FEC s'arrête à 50 %.\n"
        "Ça bloque la déclaration.\n\nFrédéric"
    )
    assert mail.date is not None and mail.date.isoformat() == "2026-03-02T09:11:58+01:00"
    assert mail.defects == []


def test_quoted_printable_latin1() -> None:
    mail = parse(corpus("quoted_printable_latin1.eml"))
    assert mail.subject == "Paramétrage des droits"
    assert mail.text == (
        "Bonjour,\n\nNous souhaitons que les comptables de l'équipe de Lyon puissent valider "
        "les écritures sans accéder à la paie. Est-ce possible ?\n\nCordialement,\nClaire"
    )


def test_raw_8bit_cp1252_headers_and_body() -> None:
    mail = parse(corpus("cp1252_raw_headers.eml"))
    assert mail.from_name == "Renée Dupré"
    assert mail.subject == "Régularisation – facture n° 12 de 1\xa0200 €"
    assert mail.text == (
        "Bonjour,\nLa facture “ avoir ” affiche 1\xa0200 € au lieu de 1\xa0000 €.\n"
        "Merci d’avance,\nRenée"
    )


def test_raw_utf8_headers_and_a_body_mislabelled_ascii() -> None:
    mail = parse(corpus("utf8_raw_headers.eml"))
    assert mail.from_name == "Hélène Étienne"
    assert mail.subject == "Écart de TVA à régulariser"
    assert mail.text == "L'écart de TVA apparaît après la clôture trimestrielle."


def test_multipart_alternative_keeps_text_and_a_sanitised_html() -> None:
    mail = parse(corpus("multipart_alternative.eml"))
    assert mail.from_name == "Martin, Claire"
    assert mail.text == "Voici la capture de l'erreur affichée."
    assert mail.html is not None
    for gone in ("<script", "alert(", "onload", "<style", "tracker.exemple.com", "javascript:"):
        assert gone not in mail.html
    assert '<img src="cid:capture@dupont-sa.fr" alt="capture">' in mail.html
    assert (
        '<a href="https://www.manao.eu/docs" rel="noopener noreferrer nofollow">doc</a>'
        in mail.html
    )
    [image] = mail.attachments
    assert (image.sniffed_type, image.size, image.inline, image.content_id) == (
        "image/png",
        PNG_SIZE,
        True,
        "<capture@dupont-sa.fr>",
    )


def test_html_only_gets_a_text_version_and_no_remote_image() -> None:
    mail = parse(corpus("html_only.eml"))
    assert mail.text == (
        "Bonjour,\nle bulletin de février n'affiche pas les heures sup.\n\n"
        "- Salarié : 0042\n- Période : 02/2026\n\nMerci & bonne journée"
    )
    assert mail.html is not None
    assert "pixel.exemple.com" not in mail.html
    assert "<img>" in mail.html
    assert mail.from_name == ""


def test_broken_mime_is_read_as_far_as_it_goes() -> None:
    mail = parse(corpus("broken_mime.eml"))
    # unknown charset in an encoded-word: UTF-8, then cp1252; an unterminated one kept as is
    assert mail.subject == "café et =?utf-8?q?d=C3=A9j=C3=A0"
    assert mail.date is None
    assert mail.text == "Le logiciel plante à l'ouverture.\n\nsecond part"
    [pdf] = mail.attachments
    assert pdf.filename == "rapport.pdf"
    assert pdf.declared_type == "application/pdf"
    assert pdf.sniffed_type == "text/plain"  # what the undecodable bytes are
    assert "CloseBoundaryNotFoundDefect" in mail.defects


def test_multipart_without_boundary_is_read_as_text() -> None:
    mail = parse(corpus("no_boundary.eml"))
    assert mail.subject == "Sans frontière"
    assert mail.text == "Le texte est là quand même."
    assert "NoBoundaryInMultipartDefect" in mail.defects


def test_missing_message_id() -> None:
    mail = parse(corpus("missing_message_id.eml"))
    assert mail.message_id is None
    assert mail.subject == "Pas de Message-ID"


def test_unknown_charsets_fall_back() -> None:
    mail = parse(corpus("unknown_charset.eml"))
    assert mail.from_name == "AndrŽ"  # x-mac-unknown: not UTF-8, read as cp1252
    assert mail.subject == "Problème – urgent"
    assert mail.text == "Données perdues après la mise à jour."


def test_attachments_typed_by_their_bytes() -> None:
    mail = parse(corpus("attachments.eml"))
    assert mail.text == "Ci-joint les documents."  # not the forwarded mail's text
    got = [
        (a.filename, a.declared_type, a.sniffed_type, a.dangerous, a.inline)
        for a in mail.attachments
    ]
    assert got == [
        ("facture été.pdf", "application/pdf", "application/pdf", False, False),
        ("releve.pdf", "application/pdf", "application/x-msdownload", True, False),
        ("page.html", "text/html", "text/html", True, False),  # no path kept
        ("Erreur de paie transmise.eml", "message/rfc822", "message/rfc822", False, False),
    ]
    pdf = mail.attachments[0]
    assert pdf.content is not None and pdf.content.startswith(b"%PDF-1.4")
    assert pdf.sha256 == hashlib.sha256(pdf.content).hexdigest()
    assert b"Ce texte est celui du mail transfere" in (mail.attachments[3].content or b"")


def test_attachment_over_the_limit_is_counted_not_kept() -> None:
    message = EmailMessage()
    message["From"] = "claire.martin@dupont-sa.fr"
    message["Subject"] = "Gros fichier"
    message.set_content("Voir la pièce jointe.")
    big = b"%PDF-1.7\n" + b"0" * 200_000
    message.add_attachment(big, maintype="application", subtype="pdf", filename="gros.pdf")
    mail = parse(message.as_bytes(), max_attachment_bytes=100_000)
    [att] = mail.attachments
    assert (att.filename, att.size, att.content, att.dropped) == (
        "gros.pdf",
        len(big),
        None,
        "too_big",
    )
    assert att.sha256 == hashlib.sha256(big).hexdigest()
    assert att.sniffed_type == "application/pdf"


def test_loop_and_list_markers_are_read() -> None:
    assert parse(corpus("auto_reply.eml")).auto_submitted == "auto-replied"
    assert parse(corpus("precedence_bulk.eml")).precedence == "bulk"
    listed = parse(corpus("mailing_list.eml"))
    assert listed.list_headers == ["List-Id", "List-Unsubscribe", "List-Post"]
    assert listed.precedence == "list"
    bounce = parse(corpus("null_sender_bounce.eml"))
    assert bounce.return_path == ""
    assert bounce.report is None


def test_delivery_status_notification() -> None:
    mail = parse(corpus("dsn_bounce.eml"))
    assert mail.report_type == "delivery-status"
    assert mail.report is not None
    assert mail.report.original_message_id == (
        "<D-2026-000042.1.aaaaaaaaaaaaaaaa@assistance.manao.eu>"
    )
    [recipient] = mail.report.recipients
    assert (recipient.address, recipient.action, recipient.status, recipient.failed) == (
        "ancien.salarie@dupont-sa.fr",
        "failed",
        "5.1.1",
        True,
    )
    assert recipient.diagnostic == "smtp; 550 5.1.1 <ancien.salarie@dupont-sa.fr>: User unknown"


def test_delivery_status_with_the_original_message() -> None:
    mail = parse(corpus("dsn_rfc822.eml"))
    assert mail.report is not None
    assert mail.report.original_message_id == (
        "<D-2026-000043.2.bbbbbbbbbbbbbbbb@assistance.manao.eu>"
    )
    assert [(r.address, r.action, r.failed) for r in mail.report.recipients] == [
        ("Parti@exemple.fr", "failed", True),
        ("lent@exemple.fr", "delayed", False),
    ]


def test_text_inline_image_text() -> None:
    mail = parse(corpus("apple_mixed_inline.eml"))
    assert mail.text == "Premiere partie.\n\nSeconde partie."
    [image] = mail.attachments
    assert (image.filename, image.inline, image.content_id) == ("capture.png", True, None)


@pytest.mark.parametrize("name", ["garbage.eml", "empty.eml"])
def test_not_a_mail_at_all(name: str) -> None:
    mail = parse(corpus(name))
    assert mail.from_address is None
    assert mail.message_id is None
    assert "\x00" not in mail.text


def test_nested_too_deep_and_too_many_parts() -> None:
    raw = b"From: a@dupont-sa.fr\r\nSubject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n"
    for depth in range(1, 40):
        raw += (
            f"\r\n--b{depth - 1}\r\nContent-Type: multipart/mixed; boundary=b{depth}\r\n".encode()
        )
    raw += b"\r\n--b39\r\nContent-Type: text/plain\r\n\r\nau fond\r\n"
    mail = parse(raw)
    assert mail.from_address == "a@dupont-sa.fr"
    assert "parts nested deeper than 12: only their text is kept" in mail.defects
    assert mail.text == "au fond"  # the text it can reach is kept (issue 14)
    assert mail.attachments == []


def test_helpers() -> None:
    assert decode_bytes(b"caf\xe9", "iso-8859-1") == "café"
    assert decode_bytes("café".encode(), "iso-8859-1") == "café"  # mislabelled UTF-8
    assert decode_bytes(b"\x81\x8d", "no-such-charset") == "\x81\x8d"  # latin-1 at worst
    assert decode_header_value("=?utf-8?q?a=00b?=\r\n c") == "ab c"
    assert safe_filename("..\\..\\windows\\system.ini", 1, "text/plain") == "system.ini"
    assert safe_filename("  ", 3, "application/pdf") == "piece-jointe-3.pdf"
    assert sniff(b"<!DOCTYPE html><p>x", "text/plain", "note.txt") == "text/html"
    assert sniff(b"<?xml version='1.0'?><svg/>", "image/png", "a.png") == "image/svg+xml"
    assert sniff(b"PK\x03\x04rest", "application/octet-stream", "a.docx") == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert sanitise_html('<img src="//cdn.exemple.com/x.png"><p onclick="x()">a</p>') == (
        "<img><p>a</p>"
    )
    assert html_to_text("<p>un</p><p>deux&nbsp;trois</p>") == "un\n\ndeux trois"


_SAMPLES = sorted(p.name for p in CORPUS.glob("*.eml"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(_SAMPLES),
    cuts=st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=8)), max_size=6),
    truncate=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_damaged_mail_never_crashes_the_parser(
    name: str, cuts: list[tuple[int, bytes]], truncate: int | None
) -> None:
    data = bytearray(corpus(name))
    for at, junk in cuts:
        at = at % (len(data) + 1)
        data[at : at + len(junk)] = junk
    if truncate is not None:
        del data[truncate:]
    mail = parse(bytes(data), max_attachment_bytes=1_000)
    # everything that comes out can be stored as PostgreSQL text
    for text in (mail.subject, mail.text, mail.from_name, mail.html or ""):
        pg_safe(text).encode("utf-8")
    for att in mail.attachments:
        assert att.content is None or len(att.content) <= 1_000
