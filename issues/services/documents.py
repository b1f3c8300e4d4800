"""Documents (DESIGN §6): append-only revisions, optimistic concurrency on the base."""

from __future__ import annotations

from django.db import transaction

from issues.models import (
    Document,
    DocumentRevision,
    Issue,
)
from issues.services.access import ensure_agent_may_mutate, hold_lock
from issues.services.rows import lock_issue, log
from paperclip.access import ensure_board, ensure_can_write
from paperclip.actors import Actor
from paperclip.errors import (
    Conflict,
)


@transaction.atomic
def document_put(
    *,
    actor: Actor,
    issue: Issue,
    key: str,
    title: str,
    body: str,
    change_summary: str = "",
    base_revision_id: str | None = None,
) -> tuple[Document, bool]:
    """Create (no base) or revise (the current base) an issue's document; answers (doc, created).

    Writes to one issue's documents queue on the issue's row lock, so of two PUTs naming the
    same base exactly one wins and the other gets 409 with the revision it missed.
    """
    issue = lock_issue(issue)
    ensure_can_write(actor, issue.company_id)
    ensure_agent_may_mutate(actor, issue)
    hold_lock(actor, issue)
    document = Document.objects.filter(issue=issue, key=key).first()
    if document is None and base_revision_id:
        raise Conflict("Document does not exist yet", code="document_missing", details={"key": key})
    if document is not None:
        current = document.latest_revision_id
        if not base_revision_id:
            raise Conflict(
                "Document update requires baseRevisionId",
                code="document_base_required",
                details={"currentRevisionId": current},
            )
        if base_revision_id != current:
            raise Conflict(
                "Document was updated by someone else",
                code="document_stale_base",
                details={"currentRevisionId": current, "baseRevisionId": base_revision_id},
            )
    created = document is None
    if created:
        document = Document.objects.create(
            company_id=issue.company_id, issue=issue, key=key, title=title, body=body
        )
        number = 1
    else:
        number = document.latest_revision.number + 1
        document.title, document.body = title, body
    revision = DocumentRevision.objects.create(
        document=document,
        number=number,
        title=title,
        body=body,
        change_summary=change_summary,
        author_agent=actor.agent,
        author_user=actor.user,
        run_id=actor.run_id,
    )
    document.latest_revision = revision
    # A new document points at its first revision in the same moment it was created.
    document.save(update_fields=["latest_revision"] if created else None)
    log(
        actor,
        issue,
        "document.created" if created else "document.revised",
        {
            "key": key,
            "revisionId": revision.pk,
            "revision": number,
            "changeSummary": change_summary,
        },
        entity=document,
    )
    return document, created


@transaction.atomic
def document_delete(*, actor: Actor, document: Document) -> None:
    """Delete a document and its revisions (board only); the log keeps what it was."""
    issue = lock_issue(document.issue)
    ensure_board(actor, issue.company_id)
    log(
        actor,
        issue,
        "document.deleted",
        {"key": document.key, "revisions": document.revisions.count()},
        entity=document,
    )
    document.delete()
