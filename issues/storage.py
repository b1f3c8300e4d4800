"""Attachment files: what we accept, how we name them, how we serve and remove them."""

from __future__ import annotations

import mimetypes
import unicodedata
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.text import get_valid_filename

from paperclip.errors import Unprocessable

# Types a browser would execute or render as a page: always served as downloads.
DOWNLOAD_ONLY_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "application/xml",
        "text/xml",
        "text/javascript",
        "application/javascript",
    }
)
MAX_NAME_LENGTH = 120


def _base_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def accepted_content_type(upload: UploadedFile) -> str:
    """The upload's content type if it is allowed; 422 for empty, too large or refused files.

    The type the client declared and the one its file name implies must both be allowed, so a
    page named `.html` cannot slip in as text/plain.
    """
    if not upload.size:
        raise Unprocessable("The file is empty", code="attachment_empty")
    limit = settings.PAPERCLIP_ATTACHMENT_MAX_BYTES
    if upload.size > limit:
        raise Unprocessable(
            f"The file is larger than {limit} bytes",
            code="attachment_too_large",
            details={"byteSize": upload.size, "maxBytes": limit},
        )
    allowed = {_base_type(t) for t in settings.PAPERCLIP_ATTACHMENT_TYPES}
    declared = _base_type(upload.content_type) or "application/octet-stream"
    implied = _base_type(mimetypes.guess_type(upload.name or "")[0]) or declared
    for content_type in {declared, implied}:
        if content_type not in allowed:
            raise Unprocessable(
                f"Files of type {content_type} are not accepted",
                code="attachment_type_refused",
                details={"contentType": content_type, "allowed": sorted(allowed)},
            )
    return declared


def safe_file_name(name: str) -> str:
    """A file name safe on any storage: no path, no odd characters, bounded length.

    Control and format characters (`\\x00`-`\\x1f`, `\\x7f`, bidi overrides, ...) are dropped
    first, so a name shown in the admin, a log line or a `Content-Disposition` header cannot
    carry a terminal escape, a line break or a reversed extension; a name left with nothing
    before its extension gets the stem `file`.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch) not in {"Cc", "Cf"})
    try:
        cleaned = get_valid_filename(base)
    except SuspiciousFileOperation:  # nothing usable left (a name of only emoji, say)
        cleaned = "file"
    if cleaned.startswith("."):  # not a hidden file: `\x01.txt` → `file.txt`
        cleaned = "file" + cleaned
    if len(cleaned) > MAX_NAME_LENGTH:
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = (
            stem[: MAX_NAME_LENGTH - len(ext) - 1] + dot + ext if dot else cleaned[:MAX_NAME_LENGTH]
        )
    return cleaned


# Where attachments' files live in the storage (`storage_name`).
ATTACHMENTS_ROOT = "attachments"


def storage_name(attachment) -> str:
    """`attachments/<company>/<issue>/<attachment id>/<name>`: unique, and easy to audit."""
    return "/".join(
        (
            ATTACHMENTS_ROOT,
            attachment.company_id,
            attachment.issue_id,
            attachment.pk,
            attachment.original_name,
        )
    )


def is_download_only(content_type: str) -> bool:
    return _base_type(content_type) in DOWNLOAD_ONLY_TYPES


def delete_stored_on_commit(names: Iterable[str]) -> None:
    """Remove stored objects once the deleting transaction has committed (never before)."""
    names = [name for name in names if name]
    if names:
        transaction.on_commit(lambda: [default_storage.delete(name) for name in names])
