"""Attachments: their type sniffed from their first bytes, their name made safe; types a
browser could run (HTML, SVG, scripts, executables) are flagged dangerous."""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass

from services.intake.mail.headers import decode_header_value

DANGEROUS_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "application/xml",
        "text/xml",
        "application/javascript",
        "text/javascript",
        "application/x-msdownload",
        "application/x-executable",
        "application/x-sh",
        "text/x-shellscript",
        "application/java-archive",
        "application/x-ms-shortcut",
        "application/hta",
    }
)
DANGEROUS_EXTENSIONS = frozenset(
    {
        "exe",
        "com",
        "scr",
        "bat",
        "cmd",
        "ps1",
        "psm1",
        "vbs",
        "vbe",
        "js",
        "jse",
        "mjs",
        "wsf",
        "wsh",
        "hta",
        "msi",
        "msp",
        "lnk",
        "jar",
        "html",
        "htm",
        "xhtml",
        "shtml",
        "svg",
        "svgz",
        "xml",
        "reg",
        "pif",
        "cpl",
        "dll",
        "sys",
        "iso",
        "img",
        "vhd",
        "docm",
        "xlsm",
        "pptm",
        "dotm",
        "sh",
        "app",
        "application",
        "gadget",
        "inf",
        "scf",
        "url",
    }
)
# Zip and OLE containers: the declared type says which document it is.
ZIP_DOCUMENTS = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".jar": "application/java-archive",
    ".docm": "application/vnd.ms-word.document.macroenabled.12",
    ".xlsm": "application/vnd.ms-excel.sheet.macroenabled.12",
}
OLE_DOCUMENTS = {
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
    ".msg": "application/vnd.ms-outlook",
    ".msi": "application/x-msi",
}
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF-", "application/pdf"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (0, b"MZ", "application/x-msdownload"),
    (0, b"\x7fELF", "application/x-executable"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"Rar!\x1a\x07", "application/vnd.rar"),
    (0, b"{\\rtf", "application/rtf"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (8, b"WEBP", "image/webp"),
    (4, b"ftyp", "video/mp4"),
    (0, b"OggS", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"BEGIN:VCALENDAR", "text/calendar"),
    (0, b"#!", "text/x-shellscript"),
)


_FILENAME_CONTROL = re.compile(r"[\x00-\x1f\x7f\"<>:|?*]")


@dataclass
class Attachment:
    filename: str
    declared_type: str
    sniffed_type: str
    size: int
    sha256: str
    content: bytes | None  # None when not kept (too big)
    dropped: str | None = None  # why the content was not kept
    inline: bool = False
    content_id: str | None = None

    @property
    def dangerous(self) -> bool:
        """A browser could run it: never served as its own type, never inline."""
        ext = self.filename.rpartition(".")[2].lower() if "." in self.filename else ""
        return (
            self.sniffed_type in DANGEROUS_TYPES
            or self.declared_type in DANGEROUS_TYPES
            or ext in DANGEROUS_EXTENSIONS
        )


# --- attachments ---------------------------------------------------------------------------------


def sniff(data: bytes, declared: str = "", filename: str = "") -> str:
    """The type the bytes say they are, whatever the sender declared."""
    head = data[:1024]
    ext = ("." + filename.rpartition(".")[2].lower()) if "." in filename else ""
    for offset, magic, kind in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            if kind == "application/zip":
                return ZIP_DOCUMENTS.get(ext, declared if _zip_declared(declared) else kind)
            if kind == "application/x-ole-storage":
                return OLE_DOCUMENTS.get(ext, kind)
            return kind
    probe = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if probe.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return "text/html"
    if b"<svg" in probe[:512]:
        return "image/svg+xml"
    if probe.startswith(b"<?xml"):
        return "application/xml"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 3:  # a character cut by the 1 KiB window
                return "text/plain"
            if declared.startswith("text/"):
                return "text/plain"
    return "application/octet-stream"


def _zip_declared(declared: str) -> bool:
    return declared.startswith(("application/vnd.openxmlformats", "application/vnd.oasis"))


def safe_filename(name: str | None, index: int, content_type: str) -> str:
    """A file name with no path, no control characters, at most 150 characters."""
    cleaned = decode_header_value(name or "")
    cleaned = cleaned.replace("\\", "/").rpartition("/")[2]
    cleaned = _FILENAME_CONTROL.sub("_", cleaned).strip(" .")
    if not cleaned:
        ext = mimetypes.guess_extension(content_type) or ".bin"
        return f"piece-jointe-{index}{ext}"
    if len(cleaned) > 150:
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = (stem[: 150 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else cleaned
        cleaned = cleaned[:150]
    return cleaned
