"""Short-lived grants (decision 0019, addendum): a capability handed from the service that holds
the authority over a resource to the service that serves it.

The service that decides (the dossier service, for the files of the mails a follow link shows)
checks its own facts, then signs a grant for exactly one resource (`mail-attachment:<id>`)
that expires within minutes; the service that holds the bytes (mail intake) serves them to
whoever brings a valid grant for that resource, without reading the other's tables or asking it
anything. Grants are signed like the follow links (`assistance.follow.mac`, MAIL_SIGNING_KEY),
under their own prefix: a follow link's signature is never a grant's.

A grant is `<expiry>.<signature>`: the expiry in seconds since the epoch (hexadecimal); the
resource is not written in it but signed, so the grant says nothing and opens nothing else.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid

from assistance.follow import SIGNATURE, mac

LIFETIME_SECONDS = 300  # long enough to follow a redirect, too short to pass a link around
MAX_CHARS = 64  # a grant is 44 characters at most; a longer one is not read

_GRANT = re.compile(rf"^(?P<expires>[0-9a-f]{{1,12}})\.(?P<sig>{SIGNATURE})$")


def mail_attachment(attachment_id: uuid.UUID) -> str:
    """The resource of one file that came with a mail (served by mail intake)."""
    return f"mail-attachment:{attachment_id}"


def _signature(resource: str, expires: int, key: str) -> str:
    return mac(f"grant:{resource}:{expires}", key)


def issue(
    resource: str, key: str, *, now: float | None = None, lifetime: int = LIFETIME_SECONDS
) -> str:
    """A grant to `resource`, valid for `lifetime` seconds from `now`."""
    expires = int(time.time() if now is None else now) + lifetime
    return f"{expires:x}.{_signature(resource, expires, key)}"


def allows(grant: str | None, resource: str, key: str, *, now: float | None = None) -> bool:
    """Whether `grant` was signed with `key` for exactly `resource` and has not expired."""
    found = _GRANT.match(grant or "") if len(grant or "") <= MAX_CHARS else None
    if found is None:
        return False
    expires = int(found["expires"], 16)
    if expires < (time.time() if now is None else now):
        return False
    expected = _signature(resource, expires, key)
    return hmac.compare_digest(expected.encode(), found["sig"].encode())
