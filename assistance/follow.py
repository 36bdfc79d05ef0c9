"""Follow a dossier without an account (issue 14, decision 0019): a personal link, signed for
one dossier and its requester's address, that ends with the dossier's reopen window and can be
revoked (links issued before a revocation stop working)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass

SIGNATURE = r"[\w-]{32}"  # what `mac` gives, in a token's pattern


def mac(message: str, key: str) -> str:
    """The signature of `message` under `key` (HMAC-SHA256, 32 URL-safe characters). Each kind
    of signed thing starts its message with its own prefix (`follow:`, `grant:`), so a
    signature of one kind is never valid as another."""
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


_TOKEN = re.compile(
    rf"^(?P<dossier>[0-9a-f]{{32}})\.(?P<issued>[0-9a-f]{{1,12}})\.(?P<sig>{SIGNATURE})$"
)


@dataclass(frozen=True)
class FollowToken:
    dossier_id: uuid.UUID
    issued: int  # milliseconds since the epoch
    signature: str


def _signature(dossier_id: uuid.UUID, email: str, issued: int, key: str) -> str:
    return mac(f"follow:{dossier_id}:{email.strip().lower()}:{issued}", key)


def sign(dossier_id: uuid.UUID, email: str, key: str, issued: int | None = None) -> str:
    """The token of a follow link for `email`, the dossier's requester."""
    issued = time.time_ns() // 1_000_000 if issued is None else issued
    return f"{dossier_id.hex}.{issued:x}.{_signature(dossier_id, email, issued, key)}"


def parse(token: str) -> FollowToken | None:
    found = _TOKEN.match(token or "")
    if found is None:
        return None
    return FollowToken(uuid.UUID(found["dossier"]), int(found["issued"], 16), found["sig"])


def signed_for(token: FollowToken, email: str, key: str) -> bool:
    expected = _signature(token.dossier_id, email, token.issued, key)
    return hmac.compare_digest(expected.encode(), token.signature.encode())
