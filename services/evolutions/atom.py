"""The Atom 1.0 feed of a software's weekly announcements (R12, RFC 4287).

One entry per ISO week with the versions released and the functional evolutions they shipped.
Ids are tag: URIs (RFC 4151), stable for the life of the feed.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from datetime import datetime
from urllib.parse import quote, urlencode

from assistance.clock import PARIS
from services.evolutions.models import WeeklyAnnouncement

ATOM_NS = "http://www.w3.org/2005/Atom"
XML_NS = "http://www.w3.org/XML/1998/namespace"
MEDIA_TYPE = "application/atom+xml"
AUTHOR = "Centre de service Manao"

ET.register_namespace("", ATOM_NS)


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        node.text = text
    return node


def _stamp(moment: datetime) -> str:
    """RFC 3339, to the second, in Europe/Paris."""
    return moment.astimezone(PARIS).isoformat(timespec="seconds")


def _week_title(item: WeeklyAnnouncement) -> str:
    year, week = item.week.split("-W")
    count = len(item.evolutions)
    what = f"{count} évolution{'s' if count > 1 else ''}" if count else "nouvelle version"
    return f"{item.software_name} — semaine {int(week)} de {year} : {what}"


def _content(item: WeeklyAnnouncement) -> str:
    """The entry's HTML (escaped by the serializer, as Atom's type="html" wants)."""
    parts: list[str] = []
    for release in item.releases:
        parts.append(f"<h2>Version {html.escape(release.version)}</h2>")
        if release.notes:
            parts.append(f"<p>{html.escape(release.notes)}</p>")
        shipped = [e for e in item.evolutions if e.version == release.version]
        if shipped:
            parts.append("<ul>")
            for e in shipped:
                summary = f" — {html.escape(e.summary)}" if e.summary else ""
                parts.append(f"<li><strong>{html.escape(e.title)}</strong>{summary}</li>")
            parts.append("</ul>")
    return "\n".join(parts)


def render_feed(
    software: str,
    software_name: str,
    items: list[WeeklyAnnouncement],
    *,
    public_url: str,
    tag_authority: str,
    generated_at: datetime,
) -> bytes:
    base = public_url.rstrip("/")
    slug = quote(software, safe="")
    feed = ET.Element(f"{{{ATOM_NS}}}feed", {f"{{{XML_NS}}}lang": "fr"})
    _el(feed, "id", f"tag:{tag_authority}:feeds/{slug}")
    _el(feed, "title", f"{software_name} — les évolutions de la semaine")
    _el(feed, "subtitle", f"Chaque semaine, les évolutions fonctionnelles de {software_name}.")
    updated = max((i.updated for i in items), default=generated_at)
    _el(feed, "updated", _stamp(updated))
    author = _el(feed, "author")
    _el(author, "name", AUTHOR)
    _el(feed, "link", rel="self", type=MEDIA_TYPE, href=f"{base}/feeds/{slug}.atom")
    _el(
        feed,
        "link",
        rel="alternate",
        type="application/json",
        href=f"{base}/api/v1/announcements?{urlencode({'software': software})}",
    )
    for item in items:
        entry = _el(feed, "entry")
        _el(entry, "id", f"tag:{tag_authority}:announcements/{slug}/{item.week}")
        _el(entry, "title", _week_title(item))
        _el(entry, "updated", _stamp(item.updated))
        query = urlencode({"software": software, "week": item.week})
        _el(entry, "link", rel="alternate", href=f"{base}/api/v1/announcements?{query}")
        _el(entry, "content", _content(item), type="html")
    ET.indent(feed)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
