"""Each attachment under the message it came with (issue 14): a mail's files under the mail's
entry (the dossier's timeline carries them), a file posted on the site under the reply it was
posted with (`site.attachments.entry_at`, or else the same author's message nearest in time)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.site import i18n

MESSAGES = ("received", "customer_message", "response", "information_request")
DOWNLOADS = "/pieces-jointes"  # the signed-in reader's downloads (portal.py)
NEAR = timedelta(minutes=10)  # a file without its entry's time: posted within this of it


def entry_for(timeline: list[dict[str, Any]], text: str) -> datetime | None:
    """The time of the entry a form just wrote (the last message with that text), from the
    dossier API's answer: stored with the files the form carried."""
    for entry in reversed(timeline):
        if entry.get("kind") in MESSAGES and entry.get("text") == text:
            return i18n.parse(entry.get("at"))
    return None


def _mail_files(entry: dict[str, Any], base: str) -> list[dict[str, Any]]:
    files = []
    for a in (entry.get("data") or {}).get("attachments") or []:
        if not isinstance(a, dict) or a.get("embedded"):  # an image inside the mail's HTML
            continue
        kept = bool(a.get("id")) and not a.get("dropped")
        files.append(
            {
                "filename": a.get("filename") or a.get("name") or "",
                "size": a.get("size"),
                "href": f"{base}/courriel/{a['id']}" if kept else None,
            }
        )
    return files


def place(
    timeline: list[dict[str, Any]], uploads: list[dict[str, Any]], base: str = DOWNLOADS
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The timeline, each entry with its `files`; and the uploads no entry could claim (each
    with its `href`). Links start with `base`: the signed-in downloads, or a follow link's."""
    entries = [
        {**e, "files": _mail_files(e, base), "_at": i18n.parse(e.get("at"))} for e in timeline
    ]
    messages = [e for e in entries if e["kind"] in MESSAGES and e["_at"] is not None]
    left = []
    for upload in uploads:
        target = None
        if upload.get("entry_at") is not None:
            target = next((e for e in messages if e["_at"] == upload["entry_at"]), None)
        if target is None:
            own = [
                e
                for e in messages
                if e.get("author") == upload["uploader_name"]
                and abs(e["_at"] - upload["uploaded_at"]) <= NEAR
            ]
            target = min(own, key=lambda e: abs(e["_at"] - upload["uploaded_at"]), default=None)
        href = f"{base}/{upload['id']}"
        file = {"filename": upload["filename"], "size": upload["size"], "href": href}
        if target is None:
            left.append({**upload, "href": href})
        else:
            target["files"].append(file)
    for e in entries:
        del e["_at"]
    return entries, left
