"""Comments: any member of the company may write on an issue, open or finished."""

from __future__ import annotations

from django.db import transaction

from agents.wakeups import Source, Wakes
from issues.mentions import mentioned_agents
from issues.models import (
    Comment,
    Issue,
)
from issues.services.access import hold_lock
from issues.services.reopen import reopen_locked
from issues.services.rows import lock_issue, log
from paperclip.access import ensure_can_write
from paperclip.actors import Actor
from paperclip.errors import NotAllowed
from paperclip.ids import parse_id


def add_comment(actor: Actor, issue: Issue, body: str, wakes: Wakes) -> Comment:
    """Add a comment; wake the assignee (unless they wrote it or the issue is finished) and
    every agent it @-mentions (never the author)."""
    comment = Comment.objects.create(
        company_id=issue.company_id,
        issue=issue,
        author_agent=actor.agent,
        author_user=actor.user,
        body=body,
        run_id=actor.run_id,
    )
    log(actor, issue, "issue.comment_added", {"commentId": comment.pk}, entity=comment)
    if not issue.is_terminal:
        wakes.add(issue.assignee_agent, Source.AUTOMATION, "issue_commented", commentId=comment.pk)
    for agent in mentioned_agents(body, issue.company_id):
        wakes.add(agent, Source.AUTOMATION, "issue_comment_mentioned", commentId=comment.pk)
    return comment


def ensure_author_is_caller(actor: Actor, author: str | None) -> None:
    """Nobody writes in another's name: an `author` given (`user:<username>`, `agent:<id>`)
    must name the caller (403). The comment is recorded as the caller's either way."""
    if author is None:
        return
    kind, _, name = author.partition(":")
    if kind == "user" and actor.user is not None and actor.user.get_username() == name:
        return
    if kind == "agent" and actor.is_agent and parse_id(name, "agt") == actor.agent.pk:
        return
    raise NotAllowed("A comment's author must be the caller", details={"author": author})


@transaction.atomic
def comment_create(
    *, actor: Actor, issue: Issue, body: str, reopen: bool = False, author: str | None = None
) -> Comment:
    """Any member of the company may comment, on open and finished issues alike.

    `reopen: true` (board only) reopens a finished issue in the same transaction. `author`,
    when given, must name the caller.
    """
    issue = lock_issue(issue)
    wakes = Wakes(actor)
    ensure_can_write(actor, issue.company_id)
    ensure_author_is_caller(actor, author)
    if reopen:
        reopen_locked(actor, issue, wakes)
    if actor.is_agent and issue.assignee_agent_id == actor.agent.pk:
        hold_lock(actor, issue)
    comment = add_comment(actor, issue, body, wakes)
    wakes.send(issue_id=issue.pk)
    return comment
