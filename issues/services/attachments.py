"""Attachments (DESIGN §6): stored through django-storages, objects removed on commit."""

from __future__ import annotations

import hashlib

from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from issues.models import (
    Attachment,
    Comment,
    Issue,
)
from issues.services.rows import lock_issue, log
from issues.storage import (
    accepted_content_type,
    delete_stored_on_commit,
    safe_file_name,
    storage_name,
)
from paperclip.access import ensure_can_write
from paperclip.actors import Actor
from paperclip.errors import NotAllowed


@transaction.atomic
def attachment_create(
    *, actor: Actor, issue: Issue, upload: UploadedFile, comment: Comment | None = None
) -> Attachment:
    """Store an upload for the issue after checking its size and type; SHA-256 recorded."""
    content_type = accepted_content_type(upload)
    issue = lock_issue(issue)
    ensure_can_write(actor, issue.company_id)
    digest = hashlib.sha256()
    for chunk in upload.chunks():  # streamed: large uploads sit in a temporary file
        digest.update(chunk)
    upload.seek(0)
    attachment = Attachment(
        company_id=issue.company_id,
        issue=issue,
        comment=comment,
        original_name=safe_file_name(upload.name or "file"),
        content_type=content_type,
        byte_size=upload.size,
        sha256=digest.hexdigest(),
        created_by_agent=actor.agent,
        created_by_user=actor.user,
    )
    attachment.file.name = default_storage.save(storage_name(attachment), upload)
    try:
        attachment.save()
        log(
            actor,
            issue,
            "attachment.created",
            {
                "name": attachment.original_name,
                "contentType": content_type,
                "byteSize": attachment.byte_size,
                "sha256": attachment.sha256,
            },
            entity=attachment,
        )
    except Exception:
        default_storage.delete(attachment.file.name)  # no row, so no object either
        raise
    return attachment


@transaction.atomic
def attachment_delete(*, actor: Actor, attachment: Attachment) -> None:
    """Delete the row now and the stored object once the transaction has committed."""
    issue = lock_issue(attachment.issue)
    ensure_can_write(actor, issue.company_id)
    if actor.is_agent and attachment.created_by_agent_id != actor.agent.pk:
        raise NotAllowed("Only the uploader or the board may delete an attachment")
    log(actor, issue, "attachment.deleted", {"name": attachment.original_name}, entity=attachment)
    name = attachment.file.name
    attachment.delete()
    delete_stored_on_commit([name])
