"""The lifecycle verbs (DESIGN §8): assign, reassign, cancel, review.

Each is one transaction on the locked issue: who may act, then the same steps PATCH uses
(`issues.services.steps`), one activity row, and the wakes the change calls for. They are the
verbs the `/v1` dialect exposes by name (DESIGN §8); `/api`'s PATCH reaches the same steps
through its fields.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from agents.models import Agent
from agents.wakeups import Source, Wakes
from issues.models import Issue, Status, StatusReason
from issues.services.access import ensure_agent_may_mutate, ensure_may_review, hold_lock
from issues.services.comments import add_comment
from issues.services.rows import lock_issue, log, touch
from issues.services.steps import end_holder_run, move, refuse_frozen, set_assignee
from paperclip.access import ensure_can_write
from paperclip.actors import Actor
from paperclip.errors import Conflict, InvalidTransition, ValidationFailed

REVIEW_VERDICTS = ("accept", "request_changes")


def _begin(actor: Actor, issue: Issue) -> Issue:
    """Lock the issue and check the caller may change it: its seat, the agent rule, run
    ownership (the assignee acts from the run holding it), and frozen issues refuse."""
    issue = lock_issue(issue)
    ensure_can_write(actor, issue.company_id)
    ensure_agent_may_mutate(actor, issue)
    hold_lock(actor, issue)
    refuse_frozen(issue)
    return issue


def _refuse(issue: Issue, action: str, to: str) -> InvalidTransition:
    return InvalidTransition(
        details={"from": issue.status, "to": to, "allowed": [], "action": action}
    )


def _is_queued(issue: Issue) -> bool:
    """Nobody's yet: backlog, or todo without an assignee (`/v1`'s `queued`)."""
    unassigned = issue.assignee_agent_id is None and issue.assignee_user_id is None
    return issue.status == Status.BACKLOG or (issue.status == Status.TODO and unassigned)


def _save(actor: Actor, issue: Issue, action: str, details: dict[str, Any]) -> None:
    touch(issue)
    issue.save()
    log(actor, issue, action, details)


@transaction.atomic
def issue_assign(*, actor: Actor, issue: Issue, agent: Agent) -> Issue:
    """A queued issue gets its agent: assignee set, backlog → todo, the agent woken.

    From any other state it is a refused transition (reassign moves assigned work).
    """
    issue = _begin(actor, issue)
    if not _is_queued(issue):
        raise _refuse(issue, "assign", Status.TODO)
    diff = set_assignee(actor, issue, {"assignee_agent": agent})
    if issue.status == Status.BACKLOG:
        diff |= move(actor, issue, Status.TODO, action="assign")
    _save(actor, issue, "issue.assigned", {"agentId": agent.pk, "changes": diff})
    wakes = Wakes(actor)
    wakes.add(agent, Source.ASSIGNMENT, "issue_assigned")
    wakes.send(issue_id=issue.pk)
    return issue


@transaction.atomic
def issue_reassign(*, actor: Actor, issue: Issue, agent: Agent, reason: str = "") -> Issue:
    """Assigned, running, in review or blocked work goes to another agent, back in todo.

    A live run holding it is stopped (exit reason `reassigned`), its history kept; the new agent
    is woken. The same agent again is a 409.
    """
    issue = _begin(actor, issue)
    if _is_queued(issue):
        raise _refuse(issue, "reassign", Status.TODO)
    if issue.assignee_agent_id == agent.pk:
        raise Conflict(
            "Issue is already assigned to this agent",
            code="already_assigned",
            details={"issueId": issue.pk, "agentId": agent.pk},
        )
    previous_agent = issue.assignee_agent_id
    ended_run = end_holder_run(actor, issue, "reassigned")
    # Leaving in_progress drops the lock, so the new assignee is set on an unlocked issue (the
    # transaction undoes all of it if the agent cannot be assigned).
    diff = move(actor, issue, Status.TODO, action="reassign")
    diff |= set_assignee(actor, issue, {"assignee_agent": agent})
    issue.status_reason = StatusReason.REASSIGNED
    _save(
        actor,
        issue,
        "issue.reassigned",
        {
            "fromAgentId": previous_agent,
            "toAgentId": agent.pk,
            "reason": reason,
            "endedRunId": ended_run,
            "changes": diff,
        },
    )
    wakes = Wakes(actor)
    wakes.add(agent, Source.ASSIGNMENT, "issue_reassigned")
    wakes.send(issue_id=issue.pk)
    return issue


@transaction.atomic
def issue_cancel(*, actor: Actor, issue: Issue, reason: str = "") -> Issue:
    """Any open issue → cancelled; a live run holding it is stopped. The reason is kept."""
    issue = _begin(actor, issue)
    diff = move(actor, issue, Status.CANCELLED, action="cancel")
    _save(actor, issue, "issue.cancelled", {"reason": reason, "changes": diff})
    return issue


@transaction.atomic
def issue_review(*, actor: Actor, issue: Issue, verdict: str, comment: str = "") -> Issue:
    """The board, or a manager of the assignee, decides an issue in review.

    `accept` → done. `request_changes` → back to the same agent in todo (status reason
    `changes_requested`), the comment added and the agent woken.
    """
    if verdict not in REVIEW_VERDICTS:
        raise ValidationFailed(details={"verdict": [f"One of {', '.join(REVIEW_VERDICTS)}."]})
    issue = lock_issue(issue)
    ensure_can_write(actor, issue.company_id)
    ensure_may_review(actor, issue)
    refuse_frozen(issue)
    if issue.status != Status.IN_REVIEW:
        target = Status.DONE if verdict == "accept" else Status.TODO
        raise _refuse(issue, "review", target)
    wakes = Wakes(actor)
    if verdict == "accept":
        diff = move(actor, issue, Status.DONE, action="review")
    else:
        diff = move(actor, issue, Status.TODO, action="review")
        issue.status_reason = StatusReason.CHANGES_REQUESTED
        wakes.add(issue.assignee_agent, Source.AUTOMATION, "issue_changes_requested")
    _save(actor, issue, "issue.reviewed", {"verdict": verdict, "changes": diff})
    if comment:
        add_comment(actor, issue, comment, wakes)
    wakes.send(issue_id=issue.pk)
    return issue
