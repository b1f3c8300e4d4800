"""The steps a change of an issue is made of, shared by PATCH and the verbs.

Each step works on an issue row the caller has locked, changes the instance (never saves) and
answers the diff for the activity row. PATCH composes them from the fields it was sent; the verbs
(`assign`, `reassign`, `cancel`, `review`) compose them by name; so both get the same rules.
"""

from __future__ import annotations

from typing import Any

from django_fsm import can_proceed

from agents.models import HeartbeatRun
from agents.services import stop_run
from companies.services import apply_changes
from issues.models import TRANSITION_TO, Issue, Status, patchable_targets
from issues.services.access import refuse_live_holder
from issues.services.relations import check_assignees, check_same_company
from paperclip.actors import Actor
from paperclip.errors import InvalidTransition, Unprocessable

# The code of `refuse_frozen`'s refusal (`/v1` names it `task_frozen`).
FROZEN = "issue_frozen"


def refuse_frozen(issue: Issue, fields: list[str] | None = None) -> None:
    """done, cancelled and failed issues are frozen (DESIGN §2): the board reopens first."""
    if issue.is_terminal:
        raise Unprocessable(
            f"Issue is {issue.status}; its fields are frozen (the board can reopen it)",
            code=FROZEN,
            details={"status": issue.status, "fields": sorted(fields or [])},
        )


def set_assignee(actor: Actor, issue: Issue, changes: dict[str, Any]) -> dict[str, Any]:
    """Point the issue at a new assignee (agent or user; naming one clears the other).

    An in-progress issue's lock belongs to the previous assignee's run: the new assignee checks
    out afresh. A live holder is still working, so taking the issue from it is an explicit act
    (the board's force-release, or reassign, which ends that run first), never a side effect.
    """
    check_same_company(issue.company_id, changes)
    check_assignees(changes)
    previous = (issue.assignee_agent_id, issue.assignee_user_id)
    diff = apply_changes(issue, changes)
    changed = (issue.assignee_agent_id, issue.assignee_user_id) != previous
    if changed and issue.status == Status.IN_PROGRESS:
        if issue.assignee_agent_id or issue.assignee_user_id:
            refuse_live_holder(actor, issue)
        issue.checkout_run = None
        issue.execution_locked_at = None
    return diff


def end_holder_run(actor: Actor, issue: Issue, reason: str) -> str | None:
    """Stop the live run that holds the issue's lock (it sees `cancelRequested` on its next
    heartbeat) and release its lease, both for `reason` (`reassigned`, `cancelled`): its exit
    reason and its lease's release reason. Its checkpoints and costs stay in the run's history.
    Answers its id.

    Not the caller's own run, and not a run that holds other in-progress issues too (an `/api`
    heartbeat run may work on several): taking this issue away must not stop its other work.
    The lock itself goes with the transition out of in_progress either way.
    """
    holder = issue.checkout_run
    if holder is None or not holder.is_live or holder.pk == actor.run_id:
        return None
    others = Issue.objects.filter(checkout_run_id=holder.pk, status=Status.IN_PROGRESS)
    if others.exclude(pk=issue.pk).exists():
        return None
    run = HeartbeatRun.objects.select_for_update().get(pk=holder.pk)
    if run.is_terminal:
        return None
    stop_run(actor, run, reason)  # the one way a run is cancelled, with its activity row
    return run.pk


def move(actor: Actor, issue: Issue, target: str, *, action: str | None = None) -> dict[str, Any]:
    """Move the issue to `target` through its transition method, or raise the right refusal.

    `action` names the verb asking (its refusal says so); PATCH leaves it out. Entering
    cancelled stops the run holding the issue. Any status change clears the status reason.
    """
    current = issue.status
    if target == current:
        return {}
    allowed = [] if issue.is_terminal else patchable_targets(current)
    if actor.is_agent:  # agents reach in_progress only through checkout
        allowed = [status for status in allowed if status != Status.IN_PROGRESS]
    details: dict[str, Any] = {"from": current, "to": target, "allowed": allowed}
    if action:
        details["action"] = action
    if target == Status.IN_PROGRESS and actor.is_agent:
        raise Unprocessable(
            "Agents start work through checkout (POST /api/issues/{id}/checkout)",
            code="checkout_required",
            details=details,
        )
    if target not in allowed:
        raise InvalidTransition(details=details)
    method = getattr(issue, TRANSITION_TO[target])
    if not can_proceed(method):
        # The edge exists, so a condition failed: the only one is "needs an assignee".
        raise Unprocessable(
            f"An issue needs an assignee to be {target}", code="assignee_required", details=details
        )
    if target == Status.CANCELLED:
        end_holder_run(actor, issue, "cancelled")
    method()
    issue.status_reason = ""
    return {"status": {"from": current, "to": issue.status}}
