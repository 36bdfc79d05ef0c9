"""Short-lived grants (assistance/grants.py, decision 0019 addendum): pure, no servers."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from assistance import follow, grants

KEY = "test-signing-key"
NOW = 1_764_633_600.0
FILE = grants.mail_attachment(uuid.UUID("787cc230-12c0-49d1-af50-9008fe67a280"))
OTHER = grants.mail_attachment(uuid.UUID("787cc230-12c0-49d1-af50-9008fe67a281"))


def test_a_grant_opens_its_one_resource_until_it_expires() -> None:
    grant = grants.issue(FILE, KEY, now=NOW)

    assert FILE == "mail-attachment:787cc230-12c0-49d1-af50-9008fe67a280"
    assert grant.startswith(f"{int(NOW) + grants.LIFETIME_SECONDS:x}.")
    assert grants.allows(grant, FILE, KEY, now=NOW) is True
    assert grants.allows(grant, FILE, KEY, now=NOW + grants.LIFETIME_SECONDS) is True
    assert grants.allows(grant, FILE, KEY, now=NOW + grants.LIFETIME_SECONDS + 1) is False
    assert grants.allows(grant, OTHER, KEY, now=NOW) is False
    assert grants.allows(grant, FILE, "another-key", now=NOW) is False


def test_a_forged_grant_opens_nothing() -> None:
    grant = grants.issue(FILE, KEY, now=NOW)
    expires, signature = grant.split(".")
    later = f"{int(expires, 16) + 3600:x}.{signature}"  # a later expiry under the same signature
    flipped = f"{expires}.{('A' if signature[0] != 'A' else 'B')}{signature[1:]}"
    for forged in (later, flipped, "", "0.0", f"{grant}x", f"{grant}.{grant}", "../../etc"):
        assert grants.allows(forged, FILE, KEY, now=NOW) is False, forged
    assert grants.allows(None, FILE, KEY, now=NOW) is False


def test_a_follow_signature_is_never_a_grant() -> None:
    """Both are signed with MAIL_SIGNING_KEY: their prefixes keep them apart."""
    expires = int(NOW) + 60
    follow_like = follow.mac(f"follow:{FILE}:{expires}", KEY)
    assert grants.allows(f"{expires:x}.{follow_like}", FILE, KEY, now=NOW) is False


@given(st.text(max_size=200))
def test_arbitrary_text_never_opens_and_never_raises(text: str) -> None:
    assert grants.allows(text, FILE, KEY, now=NOW) is False
