"""Mail bodies: HTML sanitised with nh3 for display (no scripts, styles or event handlers;
remote images dropped, so opening a mail tells no tracker anything) and a text version derived
when the mail has no plain part."""

from __future__ import annotations

import html as html_lib
import re

import nh3

# --- HTML ----------------------------------------------------------------------------------------


def _no_remote_images(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        lowered = value.strip().lower()
        if not lowered.startswith("cid:"):
            return None  # http(s), protocol-relative, data: — nothing loads when displayed
    return value


def sanitise_html(markup: str) -> str:
    """HTML safe to show a technician: no scripts or styles, links inert, no remote images."""
    return nh3.clean(
        markup,
        attribute_filter=_no_remote_images,
        url_schemes=set(nh3.ALLOWED_URL_SCHEMES) | {"cid"},
        link_rel="noopener noreferrer nofollow",
    )


_BLOCK_END = re.compile(r"(?i)</(p|div|tr|h[1-6]|table|blockquote|ul|ol|pre)\s*>")


def html_to_text(markup: str) -> str:
    """A readable text version of an HTML body."""
    text = re.sub(r"(?is)<(script|style|head|title)\b.*?</\1\s*>", " ", markup)
    text = re.sub(r"(?i)<br\s*/?>", "\n", text)
    text = _BLOCK_END.sub("\n\n", text)
    text = re.sub(r"(?i)<li\b[^>]*>", "\n- ", text)
    text = re.sub(r"(?i)</t[dh]\s*>", " \t", text)
    text = html_lib.unescape(nh3.clean(text, tags=set()))
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
