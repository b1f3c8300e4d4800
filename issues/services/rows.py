"""The issue row every write goes through: locked, versioned, logged."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from companies.services import activity_record
from issues.events import emit_issue_event
from issues.models import (
    Issue,
)
from paperclip.actors import Actor
from paperclip.errors import (
    PreconditionFailed,
)


def log(actor: Actor, issue: Issue, action: str, details: dict[str, Any], *, entity=None) -> None:
    """The activity row of a change to `issue`, and its domain event when it is one (DESIGN §9),
    in the caller's transaction."""
    entity = entity or issue
    activity_record(
        actor=actor,
        company_id=issue.company_id,
        action=action,
        entity_type=entity._meta.model_name,
        entity_id=entity.pk,
        issue_id=issue.pk,
        details=details,
    )
    emit_issue_event(actor=actor, issue=issue, action=action, details=details)


def lock_issue(issue: Issue) -> Issue:
    """The issue's row, locked until the transaction ends. No joins: PostgreSQL re-reads a
    locked row after waiting for a concurrent writer, but not the rows joined to it."""
    return Issue.objects.select_for_update().get(pk=issue.pk)


def check_if_match(issue: Issue, if_match: str | None) -> None:
    if if_match is None or if_match.strip() == "*":
        return
    tags = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if issue.etag not in tags:
        raise PreconditionFailed(details={"currentVersion": issue.version, "etag": issue.etag})


def touch(issue: Issue) -> None:
    issue.version += 1
    issue.updated_at = timezone.now()
