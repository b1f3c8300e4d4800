"""The work protocol (DESIGN §3): checkout, release, the board's force-release, stale locks."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from agents.models import CHECKED_OUT, LOCK_ADOPTED, Agent
from agents.runs import resolve_run
from agents.wakeups import Source, Wakes, ensure_wakeable
from companies.services import apply_changes
from issues.models import (
    Issue,
    IssueQuerySet,
    Status,
    StatusReason,
)
from issues.services.access import hold_lock
from issues.services.rows import lock_issue, log, touch
from paperclip.access import ensure_board, ensure_can_write
from paperclip.actors import Actor
from paperclip.errors import (
    Conflict,
    InvalidTransition,
    NotAllowed,
    NotFound,
)


def _checkout_conflict(issue: Issue) -> Conflict:
    holder = issue.checkout_run
    return Conflict(
        "Issue checkout conflict",
        code="checkout_conflict",
        details={
            "issueId": issue.pk,
            "status": issue.status,
            "assigneeAgentId": issue.assignee_agent_id,
            "checkoutRunId": issue.checkout_run_id,
            "holderRunIsLive": bool(holder and holder.is_live),
        },
    )


def refuse_paused_project(issue: Issue) -> None:
    """Nobody starts work on an issue of a paused project (409)."""
    if issue.project_is_paused:
        raise Conflict("Project is paused", code="project_paused", details={"issueId": issue.pk})


# No savepoint: the request's transaction is the unit; checkout is the hottest write.
@transaction.atomic(savepoint=False)
def issue_checkout(
    *, actor: Actor, issues: IssueQuerySet, agent: Agent, expected_statuses: list[str]
) -> Issue:
    """Claim the issue `issues` names (the caller's scope, filtered to it; else 404) for
    `agent` (DESIGN §3), in this order of outcomes: success (one conditional UPDATE) · the same
    run again (idempotent) · the same agent's new run adopts a stale lock when
    `expected_statuses` has in_progress · else 409.

    The row is read locked first: the rules are checked on it as it is, and the activity row
    says which status the issue left (an UPDATE's RETURNING answers only the new one). Racing
    runs queue on that lock; the conditional UPDATE stays the authority on who wins.
    """
    try:
        # No joins (see lock_issue): the project's state comes in a subquery.
        issue = issues.with_project_state().select_for_update().get()
    except Issue.DoesNotExist:
        raise NotFound() from None
    ensure_can_write(actor, issue.company_id)
    if actor.is_agent and actor.agent.pk != agent.pk:
        raise NotAllowed("Agents check out only as themselves")
    ensure_wakeable(agent)
    run = resolve_run(actor, required=True)
    refuse_paused_project(issue)
    taken = Issue.objects.try_checkout(
        issue_id=issue.pk,
        agent_id=agent.pk,
        run_id=run.pk if run else None,
        expected=expected_statuses,
    )
    if taken is not None:
        taken.checkout_run = run  # the task object of its event names it without a query
        log(
            actor,
            taken,
            CHECKED_OUT,
            {
                "agentId": agent.pk,
                "runId": taken.checkout_run_id,
                "status": {"from": issue.status, "to": taken.status},
            },
        )
        if not actor.is_agent:
            wakes = Wakes(actor)
            wakes.add(agent, Source.ASSIGNMENT, "issue_checked_out")
            wakes.send(issue_id=taken.pk)
        return taken

    holder = issue.checkout_run
    if run is not None and holder is not None and holder.pk == run.pk:
        return Issue.objects.with_relations().get(pk=issue.pk)  # the same run again
    if (
        run is not None
        and issue.status == Status.IN_PROGRESS
        and issue.assignee_agent_id == agent.pk
        and holder is not None
        and not holder.is_live
        and Status.IN_PROGRESS in expected_statuses
    ):
        adopted = Issue.objects.adopt_lock(
            issue_id=issue.pk, agent_id=agent.pk, stale_run_id=holder.pk, run_id=run.pk
        )
        if adopted is not None:
            log(
                actor,
                adopted,
                LOCK_ADOPTED,
                {"agentId": agent.pk, "runId": run.pk, "previousRunId": holder.pk},
            )
            return adopted
    raise _checkout_conflict(issue)


def _clear_lock(issue: Issue, *, clear_assignee: bool) -> dict[str, Any]:
    """Drop the lock (and the assignee); in_progress goes back to todo. Answers the diff."""
    diff: dict[str, Any] = {}
    if issue.checkout_run_id:
        diff["checkoutRunId"] = {"from": issue.checkout_run_id, "to": None}
    if clear_assignee:
        diff |= apply_changes(issue, {"assignee_agent": None, "assignee_user": None})
    if issue.status == Status.IN_PROGRESS:
        issue.to_todo()
        diff["status"] = {"from": Status.IN_PROGRESS, "to": issue.status}
    issue.checkout_run = None
    issue.execution_locked_at = None
    return diff


@transaction.atomic
def issue_release(*, actor: Actor, issue: Issue) -> Issue:
    """Give an issue up: no assignee, no lock; in_progress → todo, other statuses kept.

    Only the assignee (from the holding run, or one adopting a stale lock) or the board.
    """
    issue = lock_issue(issue)
    ensure_can_write(actor, issue.company_id)
    if actor.is_agent and issue.assignee_agent_id != actor.agent.pk:
        raise NotAllowed("Only the assignee or the board may release an issue")
    if issue.is_terminal:
        raise InvalidTransition(details={"from": issue.status, "to": Status.TODO, "allowed": []})
    hold_lock(actor, issue)
    diff = _clear_lock(issue, clear_assignee=True)
    touch(issue)
    issue.save()
    log(actor, issue, "issue.released", {"changes": diff})
    return issue


@transaction.atomic
def issue_force_release(
    *, actor: Actor, issue: Issue, clear_assignee: bool = False
) -> tuple[Issue, dict[str, Any]]:
    """The board's escape hatch: drop whatever lock the issue has, live or not.

    Answers the issue and who held it (run, agent, whether that run was still live).
    """
    issue = lock_issue(issue)
    ensure_board(actor, issue.company_id)
    holder = issue.checkout_run
    previous = {
        "runId": holder.pk if holder else None,
        "agentId": holder.agent_id if holder else issue.assignee_agent_id,
        "runStatus": holder.status if holder else None,
        "runWasLive": bool(holder and holder.is_live),
    }
    diff = _clear_lock(issue, clear_assignee=clear_assignee)
    if diff:
        touch(issue)
        issue.save()
    log(actor, issue, "issue.lock_force_released", {"changes": diff, "previousLock": previous})
    return issue, previous


def release_stale_lock(*, actor: Actor, issue: Issue) -> dict[str, Any]:
    """Release one stale lock (the caller holds the row lock): in_progress → todo, assignee
    kept so the agent's next run picks it up, status reason `lease_expired` (on `/v1` the task
    is assigned again). Answers what happened, for the command's report."""
    run_id = issue.checkout_run_id
    _clear_lock(issue, clear_assignee=False)
    issue.status_reason = StatusReason.LEASE_EXPIRED
    touch(issue)
    issue.save()
    log(actor, issue, "issue.stale_lock_released", {"runId": run_id, "status": issue.status})
    return {"issueId": issue.pk, "identifier": issue.identifier, "runId": run_id}
