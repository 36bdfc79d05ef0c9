"""Markdown to safe HTML (R11 documentation, R9 specifications shown on the site)."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

# CommonMark with tables and strikethrough; raw HTML in the source is kept as text, and the
# result is sanitised again, so no script, handler or style attribute can reach a reader.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
    ["table", "strikethrough"]
)
_TAGS = nh3.ALLOWED_TAGS | {"table", "thead", "tbody", "tr", "th", "td", "s", "del"}
_URL_SCHEMES = {"http", "https", "mailto"}


def to_html(markdown: str) -> str:
    """The sanitised HTML of a Markdown text."""
    return nh3.clean(
        _MARKDOWN.render(markdown),
        tags=_TAGS,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
