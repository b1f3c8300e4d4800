"""Issues: create, edit (status through its transition), delete. Each one transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django_fsm import can_proceed

from agents.wakeups import Source, Wakes
from companies.models import Company
from companies.services import apply_changes
from issues.models import (
    INITIAL_STATUSES,
    TERMINAL_STATUSES,
    TRANSITION_TO,
    Issue,
    Status,
    patchable_targets,
)
from issues.services.access import ensure_agent_may_mutate, hold_lock, refuse_live_holder
from issues.services.comments import add_comment
from issues.services.relations import (
    check_assignees,
    check_same_company,
    refuse_cycle,
    refuse_dependency_cycle,
)
from issues.services.reopen import reopen_locked
from issues.services.rows import check_if_match, lock_issue, log, touch
from issues.storage import (
    delete_stored_on_commit,
)
from paperclip.access import ensure_board, ensure_can_write
from paperclip.actors import Actor
from paperclip.errors import (
    InvalidTransition,
    Unprocessable,
)

# Fields a PATCH may set directly (status, labels and dependencies have their own handling).
M2M_FIELDS = ("labels", "dependencies")
M2M_WIRE_NAMES = {"labels": "labelIds", "dependencies": "dependencyIds"}


def _transition(issue: Issue, actor: Actor, target: str) -> None:
    """Move the issue to `target` through its transition method, or raise the right 4xx."""
    current = issue.status
    if target == current:
        return
    allowed = [] if issue.is_terminal else patchable_targets(current)
    if actor.is_agent:  # agents reach in_progress only through checkout
        allowed = [status for status in allowed if status != Status.IN_PROGRESS]
    details = {"from": current, "to": target, "allowed": allowed}
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
    method()


def _allocate_number(company: Company) -> int:
    """The next issue number, taken under the company row's lock until our transaction ends.

    Concurrent creates in one company queue on that row, so numbers have no gaps or duplicates
    (a rolled-back create rolls its number back too).
    """
    Company.objects.filter(pk=company.pk).update(issue_counter=F("issue_counter") + 1)
    return Company.objects.values_list("issue_counter", flat=True).get(pk=company.pk)


@transaction.atomic
def issue_create(*, actor: Actor, company: Company, data: dict[str, Any]) -> Issue:
    """Create an issue with its `PREFIX-N` identifier (DESIGN §2 default status rule)."""
    ensure_can_write(actor, company.pk)
    data = dict(data)
    check_same_company(company.pk, data)
    labels = data.pop("labels", [])
    dependencies = data.pop("dependencies", [])
    check_assignees(data)
    has_assignee = data.get("assignee_agent") or data.get("assignee_user")
    status = data.pop("status", None) or (Status.TODO if has_assignee else Status.BACKLOG)
    if status not in INITIAL_STATUSES:
        raise InvalidTransition(
            details={"from": None, "to": status, "allowed": list(INITIAL_STATUSES)}
        )
    number = _allocate_number(company)
    issue = Issue(
        company=company,
        number=number,
        identifier=f"{company.issue_prefix}-{number}",
        status=status,
        created_by_agent=actor.agent,
        created_by_user=actor.user,
        **data,
    )
    issue.save()
    issue.labels.set(labels)
    issue.dependencies.set(dependencies)
    log(
        actor,
        issue,
        "issue.created",
        {"identifier": issue.identifier, "title": issue.title, "status": issue.status},
    )
    if issue.status != Status.BACKLOG:
        wakes = Wakes(actor)
        wakes.add(issue.assignee_agent, Source.ASSIGNMENT, "issue_assigned")
        wakes.send(issue_id=issue.pk)
    return issue


@transaction.atomic
def issue_update(
    *,
    actor: Actor,
    issue: Issue,
    changes: dict[str, Any],
    comment: str | None = None,
    reopen: bool = False,
    if_match: str | None = None,
) -> Issue:
    """PATCH: fields, status through its transition, an optional comment, the board's reopen.

    Frozen when terminal: only a comment (or the board's reopen first) is accepted.
    """
    issue = lock_issue(issue)
    check_if_match(issue, if_match)
    ensure_can_write(actor, issue.company_id)
    changes = dict(changes)
    wakes = Wakes(actor)
    if reopen:
        reopen_locked(actor, issue, wakes)
    ensure_agent_may_mutate(actor, issue)
    hold_lock(actor, issue)

    target = changes.pop("status", None)
    if issue.is_terminal and (changes or (target and target != issue.status)):
        if target and target != issue.status:
            raise InvalidTransition(details={"from": issue.status, "to": target, "allowed": []})
        raise Unprocessable(
            f"Issue is {issue.status}; its fields are frozen (the board can reopen it)",
            code="issue_frozen",
            details={"status": issue.status, "fields": sorted(changes)},
        )

    check_same_company(issue.company_id, changes)
    check_assignees(changes)
    if "parent" in changes:
        refuse_cycle(issue, changes["parent"], kind="An issue")
    m2m = {name: changes.pop(name) for name in M2M_FIELDS if name in changes}
    if "dependencies" in m2m:
        refuse_dependency_cycle(issue, m2m["dependencies"])
    previous_agent = issue.assignee_agent_id
    diff = apply_changes(issue, changes)
    for name, values in m2m.items():
        before = set(getattr(issue, name).values_list("pk", flat=True))
        after = {value.pk for value in values}
        if before != after:
            getattr(issue, name).set(values)
            diff[M2M_WIRE_NAMES[name]] = {"from": sorted(before), "to": sorted(after)}

    if issue.status == Status.IN_PROGRESS and issue.assignee_agent_id != previous_agent:
        # The lock belongs to the previous assignee's run; the new assignee checks out afresh.
        # A live holder is still working: taking the issue from it is an explicit act (the
        # board's force-release, or the reassign verb), never a side effect of an edit.
        if issue.assignee_agent_id or issue.assignee_user_id:
            refuse_live_holder(issue)
        issue.checkout_run = None
        issue.execution_locked_at = None
    if target:
        previous_status = issue.status
        _transition(issue, actor, target)
        if issue.status != previous_status:
            diff["status"] = {"from": previous_status, "to": issue.status}
    if (
        issue.status == Status.IN_PROGRESS
        and issue.assignee_agent_id is None
        and issue.assignee_user_id is None
    ):
        raise Unprocessable("An in_progress issue needs an assignee", code="assignee_required")

    if diff:
        touch(issue)
        issue.save()
        log(actor, issue, "issue.updated", {"changes": diff})
        if issue.status not in (Status.BACKLOG, *TERMINAL_STATUSES):
            if "assigneeAgentId" in diff:
                wakes.add(issue.assignee_agent, Source.ASSIGNMENT, "issue_assigned")
            if diff.get("status", {}).get("from") == Status.BACKLOG:
                wakes.add(issue.assignee_agent, Source.ASSIGNMENT, "issue_ready")
    if comment:
        add_comment(actor, issue, comment, wakes)
    wakes.send(issue_id=issue.pk)
    return issue


@transaction.atomic
def issue_delete(*, actor: Actor, issue: Issue) -> None:
    """Delete an issue (board only); the log keeps a row saying what it was."""
    issue = lock_issue(issue)
    ensure_board(actor, issue.company_id)
    log(actor, issue, "issue.deleted", {"identifier": issue.identifier, "title": issue.title})
    files = list(issue.attachments.values_list("file", flat=True))
    issue.delete()
    delete_stored_on_commit(files)
