"""Files sent with a form: a few, each under a size limit, names cleaned, bytes kept as is."""

from __future__ import annotations

import re
import unicodedata

from starlette.datastructures import FormData, UploadFile

from services.site.repo import Upload
from services.site.settings import get_site_settings

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


class UploadRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def clean_filename(name: str) -> str:
    """The last path component, without control characters or separators, at most 255
    characters. Shown escaped and sent in Content-Disposition; never used as a path."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".") or "fichier"
    return name[:255]


async def read_uploads(form: FormData, field: str, gettext) -> list[Upload]:  # noqa: ANN001
    settings = get_site_settings()
    files = [f for f in form.getlist(field) if isinstance(f, UploadFile) and f.filename]
    if len(files) > settings.max_attachments:
        raise UploadRefused(
            gettext("At most %(n)d files per message.") % {"n": settings.max_attachments}
        )
    uploads = []
    for f in files:
        content = await f.read(settings.max_attachment_bytes + 1)
        if len(content) > settings.max_attachment_bytes:
            raise UploadRefused(
                gettext("%(name)s is too large (at most %(mb)d MB per file).")
                % {
                    "name": clean_filename(f.filename or ""),
                    "mb": settings.max_attachment_bytes // (1024 * 1024),
                }
            )
        uploads.append(
            Upload(clean_filename(f.filename or ""), f.content_type or "", bytes(content))
        )
    return uploads
