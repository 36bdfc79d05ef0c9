"""Mail authenticity (issue 13 item 3): what our trusted MTA says of SPF/DKIM/DMARC.

We never check signatures ourselves: the MTA in front (Postfix with OpenDKIM/OpenDMARC, or
rspamd) does, and writes `Authentication-Results: <its authserv-id>; dmarc=fail … header.from=…`.
Only a header bearing the configured `MAIL_TRUSTED_AUTHSERV_ID` is believed (RFC 8601 §5: the
MTA removes any incoming header claiming its id); the topmost such header is its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_METHOD = re.compile(r"(?:^|;)\s*dmarc\s*=\s*([a-z]+)([^;]*)", re.IGNORECASE)
_FROM = re.compile(r"header\.from\s*=\s*([^\s;()]+)", re.IGNORECASE)
_COMMENT = re.compile(r"\([^()]*\)")


@dataclass(frozen=True)
class Dmarc:
    result: str  # pass | fail | none | temperror | permerror | …
    domain: str | None  # header.from, lower-cased


def dmarc_of(headers: list[tuple[str, str]], authserv_id: str) -> Dmarc | None:
    """The DMARC result our trusted MTA recorded, or None if it recorded none (or no id is
    configured: then nothing is believed and nothing is decided on it)."""
    trusted = authserv_id.strip().lower()
    if not trusted:
        return None
    for name, value in headers:
        if name.lower() != "authentication-results":
            continue
        text = _COMMENT.sub("", " ".join(value.split()))
        serv, _, results = text.partition(";")
        if serv.strip().split(" ")[0].lower() != trusted:
            continue
        found = _METHOD.search(";" + results)
        if found is None:
            return None  # the trusted header says nothing of DMARC
        domain = _FROM.search(found[2])
        return Dmarc(found[1].lower(), domain[1].lower().rstrip(".") if domain else None)
    return None


def verdict_of(headers: list[tuple[str, str]], authserv_id: str) -> dict[str, str | None]:
    """What is recorded on every inbound message (issue 13): the trusted MTA's DMARC result,
    `absent` when it wrote none, `not_configured` when no MTA is trusted."""
    if not authserv_id.strip():
        return {"dmarc": "not_configured", "domain": None, "by": None}
    found = dmarc_of(headers, authserv_id)
    if found is None:
        return {"dmarc": "absent", "domain": None, "by": authserv_id.strip().lower()}
    return {"dmarc": found.result, "domain": found.domain, "by": authserv_id.strip().lower()}
