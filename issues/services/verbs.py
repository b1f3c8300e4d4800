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
from issues.projection import allowed_actions
from issues.services.access import ensure_agent_may_mutate, ensure_may_review, hold_lock
from issues.services.comments import add_comment
from issues.services.rows import lock_issue, log, touch
from issues.services.steps import end_holder_run, move, refuse_frozen, set_assignee
from paperclip.access import ensure_can_write
from paperclip.actors import Actor
from paperclip.errors import Conflict, InvalidTransition, ValidationFailed

REVIEW_VERDICTS = ("accept", "request_changes")


def _begin(actor: Actor, issue: Issue, action: str, to: str) -> Issue:
    """Lock the issue and check the caller may change it: its seat, the agent rule, run
    ownership (the assignee acts from the run holding it), frozen issues refuse, and the
    issue's state accepts the verb."""
    issue = lock_issue(issue)
    ensure_can_write(actor, issue.company_id)
    ensure_agent_may_mutate(actor, issue)
    hold_lock(actor, issue)
    refuse_frozen(issue)
    refuse_action(issue, action, to)
    return issue


def refuse_action(issue: Issue, action: str, to: str) -> None:
    """A verb the issue's state does not accept (`issues.projection.ACTIONS`) is a refused
    transition naming the verb and the status it would have reached."""
    if action not in allowed_actions(issue):
        raise InvalidTransition(
            details={"from": issue.status, "to": to, "allowed": [], "action": action}
        )


def _save(actor: Actor, issue: Issue, action: str, details: dict[str, Any]) -> None:
    touch(issue)
    issue.save()
    log(actor, issue, action, details)


@transaction.atomic
def issue_assign(*, actor: Actor, issue: Issue, agent: Agent) -> Issue:
    """A queued issue gets its agent: assignee set, backlog → todo, the agent woken.

    From any other state it is a refused transition (reassign moves assigned work).
    """
    issue = _begin(actor, issue, "assign", Status.TODO)
    diff = set_assignee(actor, issue, {"assignee_agent": agent})
    if issue.status == Status.BACKLOG:
        diff |= move(actor, issue, Status.TODO, action="assign")
    issue.status_reason = ""  # it has an agent now (no longer `no_available_agent`)
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
    issue = _begin(actor, issue, "reassign", Status.TODO)
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
    issue = _begin(actor, issue, "cancel", Status.CANCELLED)
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
    refuse_action(issue, "review", Status.DONE if verdict == "accept" else Status.TODO)
    wakes = Wakes(actor)
    if verdict == "accept":
        diff = move(actor, issue, Status.DONE, action="review")
    else:
        diff = move(actor, issue, Status.TODO, action="review")
        issue.status_reason = StatusReason.CHANGES_REQUESTED
        wakes.add(issue.assignee_agent, Source.AUTOMATION, "issue_changes_requested")
    # Named as DESIGN §8 names what happened: accepted work is done.
    action = "issue.done" if verdict == "accept" else "issue.changes_requested"
    _save(actor, issue, action, {"verdict": verdict, "changes": diff})
    if comment:
        add_comment(actor, issue, comment, wakes)
    wakes.send(issue_id=issue.pk)
    return issue
