"""Signed Message-IDs and subject tokens: how a reply finds its dossier (R1), never by From."""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistance.mail import (
    MAX_STEP,
    dossier_of_reply,
    message_ids,
    reference_in_subject,
    signed_message_id,
    subject_token,
    verify_message_id,
)

KEY = "k3y-for-tests"
DOMAIN = "assistance.manao.eu"

references = st.builds(
    lambda year, number: f"D-{year}-{number:06d}",
    st.integers(2000, 2999),
    st.integers(0, 9_999_999),
)
steps = st.integers(0, MAX_STEP)


def test_message_id_has_the_reference_the_step_and_a_truncated_hmac() -> None:
    digest = hmac.new(KEY.encode(), b"D-2026-000042.3", hashlib.sha256).digest()
    signature = base64.b32encode(digest[:10]).decode().rstrip("=").lower()

    mid = signed_message_id("D-2026-000042", 3, KEY, DOMAIN)

    assert mid == f"<D-2026-000042.3.{signature}@assistance.manao.eu>"
    assert len(signature) == 16
    assert verify_message_id(mid, KEY) == ("D-2026-000042", 3)


@given(references, steps)
def test_every_signed_id_verifies_to_its_reference_and_step(reference: str, step: int) -> None:
    mid = signed_message_id(reference, step, KEY, DOMAIN)
    assert verify_message_id(mid, KEY) == (reference, step)
    assert verify_message_id(f"  {mid[1:-1]}\r\n", KEY) == (reference, step)
    assert verify_message_id(f" < {mid[1:-1]} > ", KEY) == (reference, step)


@given(references, steps, st.text(min_size=1))
def test_another_key_never_verifies(reference: str, step: int, other: str) -> None:
    if other == KEY:
        return
    assert verify_message_id(signed_message_id(reference, step, other, DOMAIN), KEY) is None


def test_tampered_ids_fail() -> None:
    mid = signed_message_id("D-2026-000042", 3, KEY, DOMAIN)
    local, _, domain = mid[1:-1].partition("@")
    reference, step, signature = local.split(".")
    flipped = ("a" if signature[0] != "a" else "b") + signature[1:]

    assert verify_message_id(f"<{reference}.4.{signature}@{domain}>", KEY) is None
    assert verify_message_id(f"<D-2026-000043.{step}.{signature}@{domain}>", KEY) is None
    assert verify_message_id(f"<{reference}.{step}.{flipped}@{domain}>", KEY) is None
    assert verify_message_id(f"<{reference}.{step}.{signature[:-1]}@{domain}>", KEY) is None
    assert verify_message_id(f"<{reference}.{step}.{signature.upper()}@{domain}>", KEY) is None
    assert verify_message_id(f"<{reference}.{step}.{signature}>", KEY) is None
    assert verify_message_id(mid, "another-key") is None


@given(st.text())
def test_arbitrary_text_never_verifies_and_never_raises(text: str) -> None:
    assert verify_message_id(text, KEY) is None


@pytest.mark.parametrize("step", [-1, MAX_STEP + 1])
def test_steps_outside_the_range_are_refused(step: int) -> None:
    with pytest.raises(ValueError):
        signed_message_id("D-2026-000042", step, KEY, DOMAIN)


def test_a_reference_that_could_break_the_id_is_refused() -> None:
    with pytest.raises(ValueError):
        signed_message_id("D-2026.000042", 1, KEY, DOMAIN)


def test_subject_token_round_trip() -> None:
    assert subject_token("D-2026-000042") == "[D-2026-000042]"
    assert reference_in_subject("[D-2026-000042] Export FEC impossible") == "D-2026-000042"
    assert reference_in_subject("RE: TR: [D-2026-000042] Export FEC") == "D-2026-000042"
    assert reference_in_subject("Réf. [D-2027-1234567] suite") == "D-2027-1234567"
    assert reference_in_subject("D-2026-000042 sans crochets") is None
    assert reference_in_subject("[D-26-42] trop court") is None
    assert reference_in_subject("") is None
    assert reference_in_subject(None) is None


@given(references, st.text(), st.text())
def test_the_token_is_found_wherever_it_sits(reference: str, before: str, after: str) -> None:
    subject = f"{before} {subject_token(reference)} {after}"
    if reference_in_subject(before) is None:
        assert reference_in_subject(subject) == reference


def test_message_ids_reads_in_reply_to_and_references() -> None:
    assert message_ids("<a@x>\r\n <b.c@y>  <d@z>") == ["<a@x>", "<b.c@y>", "<d@z>"]
    assert message_ids(None) == []
    assert message_ids("not an id") == []


def test_a_reply_is_tied_to_its_dossier_by_signature_not_by_sender() -> None:
    ours = signed_message_id("D-2026-000042", 5, KEY, DOMAIN)
    older = signed_message_id("D-2026-000042", 1, KEY, DOMAIN)
    reply = EmailMessage()
    reply["From"] = "someone@elsewhere.example"
    reply["In-Reply-To"] = "<CAFoo123@mail.gmail.com>"
    reply["References"] = f"{older} <CAFoo123@mail.gmail.com> {ours}"
    assert dossier_of_reply(reply, KEY) == ("D-2026-000042", 5)

    forged = EmailMessage()
    forged["From"] = "claire.martin@dupont-sa.fr"
    forged["In-Reply-To"] = ours.replace(".5.", ".6.")
    assert dossier_of_reply(forged, KEY) is None
