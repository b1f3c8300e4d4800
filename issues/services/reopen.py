"""The board's reopen: the one way out of done, cancelled and failed (DESIGN §2)."""

from __future__ import annotations

from django.db import transaction

from agents.wakeups import Source, Wakes
from issues.models import (
    Issue,
)
from issues.services.rows import lock_issue, log, touch
from paperclip.access import ensure_board
from paperclip.actors import Actor
from paperclip.errors import (
    NotAllowed,
)


def reopen_locked(actor: Actor, issue: Issue, wakes: Wakes) -> bool:
    """Reopen a terminal issue (board only) and wake its assignee. Answers whether it changed."""
    if actor.is_agent:
        raise NotAllowed("Agents cannot reopen issues; create a follow-up issue instead")
    if not issue.is_terminal:
        return False
    previous = issue.status
    issue.reopen()
    touch(issue)
    issue.save()
    log(actor, issue, "issue.reopened", {"reopenedFrom": previous, "status": issue.status})
    wakes.add(issue.assignee_agent, Source.AUTOMATION, "issue_reopened")
    return True


@transaction.atomic
def issue_reopen(*, actor: Actor, issue: Issue) -> Issue:
    """The board's explicit way out of done/cancelled/failed; a no-op on an open issue."""
    issue = lock_issue(issue)
    wakes = Wakes(actor)
    ensure_board(actor, issue.company_id)
    reopen_locked(actor, issue, wakes)
    wakes.send(issue_id=issue.pk)
    return issue
