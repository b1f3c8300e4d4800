"""Issues: create, edit (status through its transition), delete. Each one transaction."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F

from agents.wakeups import Source, Wakes
from companies.models import Company
from companies.services import apply_changes
from issues.models import (
    INITIAL_STATUSES,
    TERMINAL_STATUSES,
    Issue,
    Label,
    Status,
    StatusReason,
)
from issues.services.access import ensure_agent_may_mutate, hold_lock
from issues.services.comments import add_comment
from issues.services.relations import (
    check_assignees,
    check_same_company,
    lock_company_graph,
    refuse_cycle,
    refuse_dependency_cycle,
)
from issues.services.reopen import reopen_locked
from issues.services.rows import check_if_match, lock_issue, log, touch
from issues.services.steps import move, refuse_frozen, set_assignee
from issues.services.teams import check_on_team, team_pick
from issues.storage import (
    delete_stored_on_commit,
)
from paperclip.access import ensure_board, ensure_can_write
from paperclip.actors import Actor
from paperclip.errors import (
    Conflict,
    InvalidTransition,
    Unprocessable,
)
from paperclip.returning import ReturningRead, update_returning

# Fields a PATCH may set directly (status, labels and dependencies have their own handling).
M2M_FIELDS = ("labels", "dependencies")
M2M_WIRE_NAMES = {"labels": "labelIds", "dependencies": "dependencyIds"}
ASSIGNEE_FIELDS = ("assignee_agent", "assignee_user")
GRAPH_FIELDS = {"parent", "dependencies"}


COUNTER_READ = ReturningRead(lambda: Company.objects.only("issue_counter"))


def _allocate_number(company: Company) -> int:
    """The next issue number, taken under the company row's lock until our transaction ends.

    Concurrent creates in one company queue on that row, so numbers have no gaps or duplicates
    (a rolled-back create rolls its number back too).
    """
    (counted,) = update_returning(
        Company.objects.filter(pk=company.pk),
        read=COUNTER_READ,
        issue_counter=F("issue_counter") + 1,
    )
    return counted.issue_counter


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
    issue.save(force_insert=True)  # a new row: no UPDATE tried first
    if labels:
        issue.labels.add(*labels)
    if dependencies:
        issue.dependencies.add(*dependencies)
    # What the answer and the event's task read, known without reading it back.
    issue.know_relations(labels=labels, dependencies=dependencies)
    issue.spent_usd = Decimal(0)
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
    if GRAPH_FIELDS & changes.keys():
        # The company's graph lock comes before the issue's row lock, as for every graph edit
        # (taken the other way round, two edits closing a cycle would deadlock).
        lock_company_graph(issue.company_id)
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
    if issue.is_terminal and target and target != issue.status:
        raise InvalidTransition(details={"from": issue.status, "to": target, "allowed": []})
    if changes:
        refuse_frozen(issue, list(changes))

    # The same steps as the verbs: assignee (assign/reassign rules), fields, then status
    # (cancel stops the run holding the issue).
    assignee = {name: changes.pop(name) for name in ASSIGNEE_FIELDS if name in changes}
    diff = set_assignee(actor, issue, assignee) if assignee else {}
    check_same_company(issue.company_id, changes)
    if "parent" in changes:
        refuse_cycle(issue, changes["parent"], kind="An issue")
    m2m = {name: changes.pop(name) for name in M2M_FIELDS if name in changes}
    if "dependencies" in m2m:
        refuse_dependency_cycle(issue, m2m["dependencies"])
    diff |= apply_changes(issue, changes)
    for name, values in m2m.items():
        before = set(getattr(issue, name).values_list("pk", flat=True))
        after = {value.pk for value in values}
        if before != after:
            getattr(issue, name).set(values)
            diff[M2M_WIRE_NAMES[name]] = {"from": sorted(before), "to": sorted(after)}
    if target:
        diff |= move(actor, issue, target)
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


def labels_named(company_id: str, names: list[str]) -> list[Label]:
    """The company's labels with these names (matched as their uniqueness is: ignoring case),
    each created on first use. The caller holds the company row's lock, so two requests
    naming the same new label cannot both create it."""
    labels: dict[str, Label] = {}
    for name in names:
        key = name.lower()
        if key not in labels:
            existing = Label.objects.filter(company_id=company_id, name__iexact=name).first()
            labels[key] = existing or Label.objects.create(company_id=company_id, name=name)
    return list(labels.values())


@transaction.atomic
def task_create(
    *, actor: Actor, company: Company, data: dict[str, Any], label_names: list[str] | None = None
) -> Issue:
    """Create a task the `/v1` way (DESIGN §8), through `issue_create`: labels by name, created
    on first use; work given to a team (`team` without `assignee_agent`) goes to the team's
    available agent with the fewest open tasks, or waits queued (`no_available_agent`). An agent
    named with a team must be on it (422)."""
    ensure_can_write(actor, company.pk)
    data = dict(data)
    team, agent = data.get("team"), data.get("assignee_agent")
    if team is not None and agent is not None:
        check_on_team(agent, team)
    elif team is not None:
        data["assignee_agent"] = team_pick(team)
        if data["assignee_agent"] is None:
            data["status_reason"] = StatusReason.NO_AVAILABLE_AGENT
    # The company row's lock, which the create takes anyway for its number: new labels too
    # are made one request at a time.
    lock_company_graph(company.pk)
    data["labels"] = labels_named(company.pk, label_names or [])
    return issue_create(actor=actor, company=company, data=data)


@transaction.atomic
def task_update(
    *,
    actor: Actor,
    issue: Issue,
    changes: dict[str, Any],
    label_names: list[str] | None = None,
    add_labels: list[str] = (),
    remove_labels: list[str] = (),
    if_match: str | None = None,
) -> Issue:
    """Edit a task the `/v1` way (DESIGN §8), through `issue_update`: a frozen task refuses even
    an empty edit, the per-task budget is fixed once the task has started (409
    `task_started`), and labels are names (created on first use): `label_names` replaces
    them, `add_labels` / `remove_labels` (bulk's label and unlabel) change the ones the task has
    under its lock, so two edits at once both count."""
    if add_labels or remove_labels:
        label_names = []  # computed below, from the labels as they are under the lock
    if label_names is not None:
        # New labels are made under the company row's lock, taken before the issue's as every
        # edit that takes both does.
        lock_company_graph(issue.company_id)
    issue = lock_issue(issue)
    check_if_match(issue, if_match)
    ensure_can_write(actor, issue.company_id)
    changes = dict(changes)
    refuse_frozen(issue, [*changes, *(["labels"] if label_names is not None else [])])
    if "budget_usd" in changes and issue.started_at is not None:
        raise Conflict(
            "The task has started; its budget is fixed",
            code="task_started",
            details={"startedAt": issue.started_at},
        )
    if add_labels or remove_labels:
        gone = {name.lower() for name in remove_labels}
        kept = [label.name for label in issue.labels.all() if label.name.lower() not in gone]
        label_names = [*kept, *add_labels]
    if label_names is not None:
        changes["labels"] = labels_named(issue.company_id, label_names)
    return issue_update(actor=actor, issue=issue, changes=changes)


@transaction.atomic
def issue_delete(*, actor: Actor, issue: Issue) -> None:
    """Delete an issue (board only); the log keeps a row saying what it was."""
    issue = lock_issue(issue)
    ensure_board(actor, issue.company_id)
    log(actor, issue, "issue.deleted", {"identifier": issue.identifier, "title": issue.title})
    files = list(issue.attachments.values_list("file", flat=True))
    issue.delete()  # its children and dependents get a new version (issues.apps)
    delete_stored_on_commit(files)
