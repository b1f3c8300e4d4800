"""The agent plane of `/v1` (DESIGN §8): an agent claims a task for a new run; the run renews
its lease, reports progress, and ends its attempt by completing, failing or handing off.

A claim is §3's checkout with a run of its own: ONE conditional UPDATE
(`IssueQuerySet.try_checkout`) decides it, so of N racing agents exactly one wins, and it bumps
the task's claim counter, the run's fencing token. Every run verb first checks, on the locked
rows, that the run is still the task's current run (`current_run`); a worker whose run was
reassigned, cancelled, or whose lease expired gets 409 `lease_lost` and never writes.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from agents.models import Agent, HeartbeatRun
from agents.services import time_out_expired_runs
from issues.models import Issue, Status
from issues.projection import refused
from issues.services.checkout import refuse_paused_project, release_stale_lock
from issues.services.rows import lock_issue, log, touch
from issues.services.steps import move
from paperclip.access import ensure_can_write
from paperclip.actors import SYSTEM, Actor
from paperclip.errors import Conflict, NotAllowed

# What a claim may start from: queued (backlog, or todo without an assignee) and assigned
# (todo with one). An unlocked in_progress issue of the same agent is claimable too (the
# board started it by hand), as for checkout.
CLAIMABLE = [Status.BACKLOG, Status.TODO]


def _refuse_unready(issue: Issue) -> None:
    """A task starts only when every dependency is done and its budget is not spent."""
    pending = sorted(issue.dependencies.exclude(status=Status.DONE).values_list("pk", flat=True))
    if pending:
        raise Conflict(
            "The task waits on unfinished dependencies",
            code="dependencies_pending",
            details={"taskId": issue.pk, "pendingDependencies": pending},
        )
    # What the runs that claimed it cost: read only when it has a budget to spend.
    if issue.budget_usd is not None and (spent := issue.spent_usd) >= issue.budget_usd:
        raise Conflict(
            "The task's budget is spent",
            code="budget_exhausted",
            details={
                "taskId": issue.pk,
                "perTaskUsd": float(issue.budget_usd),
                "spentUsd": float(spent),
            },
        )


def _lease_conflict(issue: Issue, holder: HeartbeatRun) -> Conflict:
    return Conflict(
        "Another live run holds the task",
        code="lease_conflict",
        details={
            "taskId": issue.pk,
            "runId": holder.pk,
            "agentId": holder.agent_id,
            "leaseExpiresAt": holder.lease_expires_at,
        },
    )


def _claim_refusal(agent: Agent, issue: Issue) -> Exception:
    """Why the conditional UPDATE changed nothing, read from the locked row."""
    holder = issue.checkout_run
    if issue.status == Status.IN_PROGRESS and holder is not None and holder.is_live:
        return _lease_conflict(issue, holder)
    if not issue.is_terminal and (
        issue.assignee_user_id or issue.assignee_agent_id not in (None, agent.pk)
    ):
        return NotAllowed("The task is assigned to another agent")
    # In review, in handoff or finished: refused as `/v1` refuses any verb of the task's state.
    return refused(issue, "claim")


def _heal_expired_lease(issue: Issue) -> bool:
    """§3's lock cleanup for this one task, done lazily by the next claim: a run whose lease
    expired is timed out, and its lock released (back to assigned, `lease_expired`). The
    caller holds the row lock. Answers whether there was anything to heal."""
    holder = issue.checkout_run
    if issue.status != Status.IN_PROGRESS or holder is None or holder.is_live:
        return False
    time_out_expired_runs([holder.pk])
    release_stale_lock(actor=SYSTEM, issue=issue)
    return True


# No savepoint: the request's transaction is the unit, as for checkout.
@transaction.atomic(savepoint=False)
def task_claim(*, actor: Actor, issue: Issue) -> HeartbeatRun:
    """An agent claims a task for a new run (DESIGN §8): the task goes running, the run holds
    its lease, and its fencing token is the task's claim counter after this claim.

    The assigned agent claims its task; a queued task nobody is assigned to may be claimed by
    any active agent of the company, which becomes its assignee. Refusals: board callers 403;
    unfinished dependencies, a spent budget, a live run holding it (`lease_conflict`), a task
    in review, handoff or finished (`invalid_transition`): 409; another agent's task: 403.
    """
    if not actor.is_agent:
        raise NotAllowed("Only an agent claims a task")
    ensure_can_write(actor, issue.company_id)
    agent = actor.agent
    refuse_paused_project(issue)
    if issue.status not in (*CLAIMABLE, Status.IN_PROGRESS):
        # In review, in handoff or finished: its state refuses the claim before anything else
        # is asked of it (the conditional UPDATE below stays the authority).
        raise _claim_refusal(agent, issue)
    _refuse_unready(issue)

    run = HeartbeatRun(
        company_id=issue.company_id,
        agent=agent,
        issue_id=issue.pk,
        invocation_source=HeartbeatRun.Source.ON_DEMAND,
        wake_reason="task_claimed",
        context={"taskId": issue.pk, "issueId": issue.pk},
    )
    run.start()
    run.lease_acquired_at = run.started_at
    run.save(force_insert=True)  # a new row: no UPDATE tried first
    run.costs_nothing_yet()

    previous = issue.status

    def claim() -> Issue | None:
        return Issue.objects.try_checkout(
            issue_id=issue.pk,
            agent_id=agent.pk,
            run_id=run.pk,
            expected=CLAIMABLE,
            count_claim=True,
        )

    claimed = claim()
    if claimed is None:
        locked = lock_issue(issue)
        claimed = claim() if _heal_expired_lease(locked) else None
        if claimed is None:
            raise _claim_refusal(agent, locked)
        previous = locked.status  # healed: back in todo before this claim
    issue = claimed
    issue.checkout_run = run  # the task object of its event names it without a query
    run.fencing_token = issue.claim_count
    run.save(update_fields=["fencing_token"])
    log(
        actor,
        issue,
        "issue.started",
        {
            "runId": run.pk,
            "agentId": agent.pk,
            "fencingToken": run.fencing_token,
            "status": {"from": previous, "to": issue.status},
        },
    )
    return run


def current_run(actor: Actor, issue: Issue, run: HeartbeatRun) -> tuple[Issue, HeartbeatRun]:
    """The task and its run, locked (issue first, as every issue write), once the run is
    checked to be the caller's and still the task's current run: the task is running under
    this run's lock and the run's lease has not expired. Else 409 `lease_lost`.

    Every run verb starts here, so a stale worker (its run reassigned, cancelled, expired and
    healed, or finished) can never write.
    """
    # The caller's own run header is not refused here for being dead: that is `lease_lost`.
    ensure_can_write(actor, issue.company_id, check_run=actor.run_id != run.pk)
    if not actor.is_agent or actor.agent.pk != run.agent_id:
        raise NotAllowed("A run is driven by its own agent")
    issue = lock_issue(issue)
    run = HeartbeatRun.objects.select_for_update().get(pk=run.pk)
    if not (issue.status == Status.IN_PROGRESS and issue.checkout_run_id == run.pk and run.is_live):
        raise Conflict(
            "The run is no longer the task's current run",
            code="lease_lost",
            details={
                "taskId": issue.pk,
                "runId": run.pk,
                "runStatus": run.status,
                "currentRunId": issue.checkout_run_id,
            },
        )
    return issue, run


@transaction.atomic
def run_lease_renew(*, actor: Actor, issue: Issue, run: HeartbeatRun) -> HeartbeatRun:
    """The run's heartbeat: its lease is pushed on and the renewal counted."""
    issue, run = current_run(actor, issue, run)
    run.renew_lease()
    run.save(update_fields=["lease_expires_at", "lease_renewals", "lease_renewed_at"])
    Agent.objects.filter(pk=run.agent_id).update(last_heartbeat_at=timezone.now())
    return run


@transaction.atomic
def run_progress(
    *, actor: Actor, issue: Issue, run: HeartbeatRun, checkpoint: dict[str, Any], message: str = ""
) -> HeartbeatRun:
    """The run reports progress: its newest checkpoint replaces the last one, and (as any
    request of a run) its lease is renewed."""
    issue, run = current_run(actor, issue, run)
    run.checkpoint = checkpoint
    run.renew_lease()
    run.save(update_fields=["checkpoint", "lease_expires_at", "lease_renewals", "lease_renewed_at"])
    log(
        actor,
        issue,
        "issue.progress",
        {"runId": run.pk, "message": message, "fencingToken": run.fencing_token},
    )
    return run


def _end(
    actor: Actor,
    issue: Issue,
    run: HeartbeatRun,
    *,
    target: str,
    verb: str,
    outcome: str,
    exit_reason: str,
    exit_details: dict[str, Any],
) -> dict[str, Any]:
    """End the attempt: the task moves to `target` (its lock goes with in_progress), the run
    finishes with `outcome` and releases its lease. Answers the task's diff."""
    diff = move(actor, issue, target, action=verb)
    touch(issue)
    issue.save()
    run.exit_reason = exit_reason
    run.exit_details = exit_details
    run.finish(outcome)
    run.release_lease(exit_reason)
    run.save()
    return diff


@transaction.atomic
def run_complete(
    *,
    actor: Actor,
    issue: Issue,
    run: HeartbeatRun,
    checkpoint: dict[str, Any] | None = None,
    summary: str = "",
) -> HeartbeatRun:
    """The agent marks its work complete: the task goes to review, the run succeeds (exit
    reason `completed`), with its final checkpoint when given."""
    issue, run = current_run(actor, issue, run)
    if checkpoint is not None:
        run.checkpoint = checkpoint
    diff = _end(
        actor,
        issue,
        run,
        target=Status.IN_REVIEW,
        verb="complete",
        outcome=HeartbeatRun.Status.SUCCEEDED,
        exit_reason="completed",
        exit_details={"summary": summary},
    )
    log(actor, issue, "issue.review", {"runId": run.pk, "summary": summary, "changes": diff})
    return run


@transaction.atomic
def run_fail(
    *,
    actor: Actor,
    issue: Issue,
    run: HeartbeatRun,
    reason: str,
    details: dict[str, Any] | None = None,
) -> HeartbeatRun:
    """The agent gives up: the task fails (frozen), the run fails with the reason."""
    issue, run = current_run(actor, issue, run)
    run.error = reason
    diff = _end(
        actor,
        issue,
        run,
        target=Status.FAILED,
        verb="fail",
        outcome=HeartbeatRun.Status.FAILED,
        exit_reason="failed",
        exit_details={"reason": reason, "details": details or {}},
    )
    log(actor, issue, "issue.failed", {"runId": run.pk, "reason": reason, "changes": diff})
    return run


@transaction.atomic
def run_handoff(*, actor: Actor, issue: Issue, run: HeartbeatRun, reason: str) -> HeartbeatRun:
    """The agent hands the task to a human: the task waits in handoff (blocked), the run ends
    on its own terms (succeeded, exit reason `handoff`)."""
    issue, run = current_run(actor, issue, run)
    diff = _end(
        actor,
        issue,
        run,
        target=Status.BLOCKED,
        verb="handoff",
        outcome=HeartbeatRun.Status.SUCCEEDED,
        exit_reason="handoff",
        exit_details={"reason": reason},
    )
    log(actor, issue, "issue.handoff", {"runId": run.pk, "reason": reason, "changes": diff})
    return run
