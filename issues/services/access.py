"""Who may change an issue (DESIGN §3, §4), decided on the row as it is under the lock."""

from __future__ import annotations

from django.utils import timezone

from agents.models import LOCK_ADOPTED
from agents.runs import resolve_run
from issues.models import (
    Issue,
    Status,
)
from issues.services.rows import log, touch
from paperclip.actors import Actor
from paperclip.errors import (
    Conflict,
    NotAllowed,
)


def ensure_agent_may_mutate(actor: Actor, issue: Issue) -> None:
    """DESIGN §4: agents change issues that are unassigned, theirs, or their reports'.

    Another agent's in-progress issue is a 409 (it is checked out); anything else is a 403.
    Board users are not limited here (`paperclip.access` has checked their seat).
    """
    if not actor.is_agent:
        return
    agent = actor.agent
    if issue.assignee_agent_id is None and issue.assignee_user_id is None:
        return
    if issue.assignee_agent_id == agent.pk:
        return
    if issue.assignee_agent is not None and agent.manages(issue.assignee_agent):
        return
    if issue.status == Status.IN_PROGRESS and issue.assignee_agent_id is not None:
        raise Conflict(
            "Issue is checked out by another agent",
            code="checked_out",
            details={"issueId": issue.pk, "assigneeAgentId": issue.assignee_agent_id},
        )
    raise NotAllowed("Agents may only change issues assigned to them or their reports")


def hold_lock(actor: Actor, issue: Issue) -> None:
    """Run ownership: the assignee agent changes its in-progress issue only from the run that
    holds the lock, or a new run of its own that adopts a stale (or missing) lock.

    Other callers pass: the board, and managers (their access was checked already).
    """
    if not (
        actor.is_agent
        and issue.status == Status.IN_PROGRESS
        and issue.assignee_agent_id == actor.agent.pk
    ):
        return
    run = resolve_run(actor, required=True)
    holder = issue.checkout_run
    if holder is not None and holder.pk == run.pk:
        return
    if holder is not None and holder.is_live:
        raise Conflict(
            "Issue run ownership conflict",
            code="run_ownership_conflict",
            details={"issueId": issue.pk, "checkoutRunId": holder.pk, "runId": run.pk},
        )
    issue.checkout_run = run
    issue.execution_locked_at = timezone.now()
    touch(issue)
    issue.save()
    log(
        actor,
        issue,
        LOCK_ADOPTED,
        {"runId": run.pk, "previousRunId": holder.pk if holder else None},
    )


def refuse_live_holder(actor: Actor, issue: Issue) -> None:
    """409 naming the live run that holds the issue's lock, if one does (and it is not the
    caller's own: the holder may hand its work over)."""
    holder = issue.checkout_run
    if holder is not None and holder.is_live and holder.pk != actor.run_id:
        raise Conflict(
            "Issue is checked out by a live run; force-release it (or reassign) first",
            code="issue_locked_by_live_run",
            details={
                "issueId": issue.pk,
                "checkoutRunId": holder.pk,
                "assigneeAgentId": holder.agent_id,
            },
        )


def ensure_may_review(actor: Actor, issue: Issue) -> None:
    """A review is the board's, or a manager's of the assignee (chain of command); never the
    assignee's own, agent or board user, and no other agent's (DESIGN §8)."""
    if actor.is_board and issue.assignee_user_id == actor.id:
        raise NotAllowed("Nobody reviews their own work")
    if not actor.is_agent:
        return
    agent = actor.agent
    if issue.assignee_agent_id == agent.pk:
        raise NotAllowed("An agent cannot review its own work")
    if issue.assignee_agent is None or not agent.manages(issue.assignee_agent):
        raise NotAllowed("Only the board or a manager of the assignee may review")
