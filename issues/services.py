"""Writes for issues and comments. Each is one transaction: lock, check, transition, save, log."""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_fsm import can_proceed

from agents.models import CHECKED_OUT, LOCK_ADOPTED, Agent
from agents.runs import resolve_run
from agents.wakeups import Source, Wakes, ensure_wakeable
from companies.models import Company
from companies.services import activity_record, apply_changes
from issues.mentions import mentioned_agents
from issues.models import (
    INITIAL_STATUSES,
    TERMINAL_STATUSES,
    TRANSITION_TO,
    Approval,
    ApprovalComment,
    Attachment,
    Comment,
    Document,
    DocumentRevision,
    Goal,
    Issue,
    Status,
    patchable_targets,
)
from issues.storage import (
    accepted_content_type,
    delete_stored_on_commit,
    safe_file_name,
    storage_name,
)
from paperclip.actors import Actor
from paperclip.api.serializers import camel
from paperclip.errors import (
    Conflict,
    InvalidTransition,
    NotAllowed,
    PreconditionFailed,
    Unprocessable,
    ValidationFailed,
)

# Fields a PATCH may set directly (status, labels and dependencies have their own handling).
M2M_FIELDS = ("labels", "dependencies")
M2M_WIRE_NAMES = {"labels": "labelIds", "dependencies": "dependencyIds"}


def _log(actor: Actor, issue: Issue, action: str, details: dict[str, Any], *, entity=None) -> None:
    entity = entity or issue
    activity_record(
        actor=actor,
        company_id=issue.company_id,
        action=action,
        entity_type=entity._meta.model_name,
        entity_id=entity.pk,
        issue_id=issue.pk,
        details=details,
    )


def ensure_agent_may_mutate(actor: Actor, issue: Issue) -> None:
    """DESIGN §4: agents change issues that are unassigned, theirs, or their reports'.

    Another agent's in-progress issue is a 409 (it is checked out); anything else is a 403.
    Board users are not limited here (their company access is checked by the permission class).
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


def _check_same_company(company_id: str, values: dict[str, Any]) -> None:
    """Every related record an issue points at belongs to the issue's company.

    The API's scoped fields already refuse foreign ids; this keeps every other caller (the
    admin, commands, later APIs) from linking across tenants.
    """
    for name, value in values.items():
        related = value if isinstance(value, (list, tuple, set)) else [value]
        for item in related:
            item_company = getattr(item, "company_id", None)
            if item_company is not None and item_company != company_id:
                raise ValidationFailed(
                    "Validation failed",
                    code="validation_error",
                    details={camel(name): ["Must belong to the issue's company."]},
                )
    user = values.get("assignee_user")
    if user is not None and not user.memberships.filter(company_id=company_id).exists():
        raise ValidationFailed(
            "Validation failed",
            code="validation_error",
            details={"assigneeUserId": ["Must be a member of the issue's company."]},
        )


def _check_assignees(changes: dict[str, Any]) -> None:
    """At most one assignee: naming one replaces the other; naming both is a 422."""
    agent, user = changes.get("assignee_agent"), changes.get("assignee_user")
    if agent is not None and user is not None:
        raise Unprocessable(
            "An issue has at most one assignee: an agent or a user", code="one_assignee"
        )
    if agent is not None and "assignee_user" not in changes:
        changes["assignee_user"] = None
    if user is not None and "assignee_agent" not in changes:
        changes["assignee_agent"] = None
    if agent is not None and agent.status == agent.Status.TERMINATED:
        raise Unprocessable("Cannot assign a terminated agent", code="agent_terminated")


def _refuse_cycle(record, parent, *, kind: str) -> None:
    """A record (issue or goal) may not become its own ancestor through `parent`."""
    node, depth = parent, 0
    while node is not None and depth < 1000:
        if node.pk == record.pk:
            raise ValidationFailed(
                "Validation failed",
                code="validation_error",
                details={"parentId": [f"{kind} cannot be its own ancestor."]},
            )
        node, depth = node.parent, depth + 1


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
    data = dict(data)
    _check_same_company(company.pk, data)
    labels = data.pop("labels", [])
    dependencies = data.pop("dependencies", [])
    _check_assignees(data)
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
    _log(
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


def _lock(issue: Issue) -> Issue:
    """The issue's row, locked until the transaction ends. No joins: PostgreSQL re-reads a
    locked row after waiting for a concurrent writer, but not the rows joined to it."""
    return Issue.objects.select_for_update().get(pk=issue.pk)


def _check_if_match(issue: Issue, if_match: str | None) -> None:
    if if_match is None or if_match.strip() == "*":
        return
    tags = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if issue.etag not in tags:
        raise PreconditionFailed(details={"currentVersion": issue.version, "etag": issue.etag})


def _reopen(actor: Actor, issue: Issue, wakes: Wakes) -> bool:
    """Reopen a terminal issue (board only) and wake its assignee. Answers whether it changed."""
    if actor.is_agent:
        raise NotAllowed("Agents cannot reopen issues; create a follow-up issue instead")
    if not issue.is_terminal:
        return False
    previous = issue.status
    issue.reopen()
    _touch(issue)
    issue.save()
    _log(actor, issue, "issue.reopened", {"reopenedFrom": previous, "status": issue.status})
    wakes.add(issue.assignee_agent, Source.AUTOMATION, "issue_reopened")
    return True


def _touch(issue: Issue) -> None:
    issue.version += 1
    issue.updated_at = timezone.now()


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
    issue = _lock(issue)
    _check_if_match(issue, if_match)
    changes = dict(changes)
    wakes = Wakes(actor)
    if reopen:
        _reopen(actor, issue, wakes)
    ensure_agent_may_mutate(actor, issue)
    _hold_lock(actor, issue)

    target = changes.pop("status", None)
    if issue.is_terminal and (changes or (target and target != issue.status)):
        if target and target != issue.status:
            raise InvalidTransition(details={"from": issue.status, "to": target, "allowed": []})
        raise Unprocessable(
            f"Issue is {issue.status}; its fields are frozen (the board can reopen it)",
            code="issue_frozen",
            details={"status": issue.status, "fields": sorted(changes)},
        )

    _check_same_company(issue.company_id, changes)
    _check_assignees(changes)
    if "parent" in changes:
        _refuse_cycle(issue, changes["parent"], kind="An issue")
    m2m = {name: changes.pop(name) for name in M2M_FIELDS if name in changes}
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
            _refuse_live_holder(issue)
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
        _touch(issue)
        issue.save()
        _log(actor, issue, "issue.updated", {"changes": diff})
        if issue.status not in (Status.BACKLOG, *TERMINAL_STATUSES):
            if "assigneeAgentId" in diff:
                wakes.add(issue.assignee_agent, Source.ASSIGNMENT, "issue_assigned")
            if diff.get("status", {}).get("from") == Status.BACKLOG:
                wakes.add(issue.assignee_agent, Source.ASSIGNMENT, "issue_ready")
    if comment:
        _add_comment(actor, issue, comment, wakes)
    wakes.send(issue_id=issue.pk)
    return issue


@transaction.atomic
def issue_reopen(*, actor: Actor, issue: Issue) -> Issue:
    """The board's explicit way out of done/cancelled/failed; a no-op on an open issue."""
    issue = _lock(issue)
    wakes = Wakes(actor)
    _reopen(actor, issue, wakes)
    wakes.send(issue_id=issue.pk)
    return issue


@transaction.atomic
def issue_delete(*, actor: Actor, issue: Issue) -> None:
    """Delete an issue (board only); the log keeps a row saying what it was."""
    issue = _lock(issue)
    _log(actor, issue, "issue.deleted", {"identifier": issue.identifier, "title": issue.title})
    files = list(issue.attachments.values_list("file", flat=True))
    issue.delete()
    delete_stored_on_commit(files)


def _add_comment(actor: Actor, issue: Issue, body: str, wakes: Wakes) -> Comment:
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
    _log(actor, issue, "issue.comment_added", {"commentId": comment.pk}, entity=comment)
    if not issue.is_terminal:
        wakes.add(issue.assignee_agent, Source.AUTOMATION, "issue_commented", commentId=comment.pk)
    for agent in mentioned_agents(body, issue.company_id):
        wakes.add(agent, Source.AUTOMATION, "issue_comment_mentioned", commentId=comment.pk)
    return comment


@transaction.atomic
def comment_create(*, actor: Actor, issue: Issue, body: str, reopen: bool = False) -> Comment:
    """Any member of the company may comment, on open and finished issues alike.

    `reopen: true` (board only) reopens a finished issue in the same transaction.
    """
    issue = _lock(issue)
    wakes = Wakes(actor)
    if reopen:
        _reopen(actor, issue, wakes)
    if actor.is_agent and issue.assignee_agent_id == actor.agent.pk:
        _hold_lock(actor, issue)
    comment = _add_comment(actor, issue, body, wakes)
    wakes.send(issue_id=issue.pk)
    return comment


# --- The work protocol: checkout, run ownership, release (DESIGN §3) ---


def _hold_lock(actor: Actor, issue: Issue) -> None:
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
    _touch(issue)
    issue.save()
    _log(
        actor,
        issue,
        LOCK_ADOPTED,
        {"runId": run.pk, "previousRunId": holder.pk if holder else None},
    )


def _refuse_live_holder(issue: Issue) -> None:
    """409 naming the live run that holds the issue's lock, if one does."""
    holder = issue.checkout_run
    if holder is not None and holder.is_live:
        raise Conflict(
            "Issue is checked out by a live run; force-release it (or reassign) first",
            code="issue_locked_by_live_run",
            details={
                "issueId": issue.pk,
                "checkoutRunId": holder.pk,
                "assigneeAgentId": holder.agent_id,
            },
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


# No savepoint: the request's transaction is the unit; checkout is the hottest write.
@transaction.atomic(savepoint=False)
def issue_checkout(
    *, actor: Actor, issue: Issue, agent: Agent, expected_statuses: list[str]
) -> Issue:
    """Claim an issue for `agent` (DESIGN §3), in this order of outcomes:

    success (one conditional UPDATE) · the same run again (idempotent) · the same agent's new
    run adopts a stale lock when `expected_statuses` has in_progress · else 409.
    """
    if actor.is_agent and actor.agent.pk != agent.pk:
        raise NotAllowed("Agents check out only as themselves")
    ensure_wakeable(agent)
    run = resolve_run(actor, required=True)
    if issue.project_id and issue.project.status == issue.project.Status.PAUSED:
        raise Conflict("Project is paused", code="project_paused", details={"issueId": issue.pk})
    previous = issue.status
    changed = Issue.objects.try_checkout(
        issue_id=issue.pk,
        agent_id=agent.pk,
        run_id=run.pk if run else None,
        expected=expected_statuses,
    )
    if changed:
        issue = Issue.objects.get(pk=issue.pk)
        _log(
            actor,
            issue,
            CHECKED_OUT,
            {
                "agentId": agent.pk,
                "runId": issue.checkout_run_id,
                "status": {"from": previous, "to": issue.status},
            },
        )
        if not actor.is_agent:
            wakes = Wakes(actor)
            wakes.add(agent, Source.ASSIGNMENT, "issue_checked_out")
            wakes.send(issue_id=issue.pk)
        return issue

    issue = _lock(issue)
    holder = issue.checkout_run  # loaded after the lock: the winner's run, not a stale one
    if run is not None and holder is not None and holder.pk == run.pk:
        return issue  # the same run again
    if (
        run is not None
        and issue.status == Status.IN_PROGRESS
        and issue.assignee_agent_id == agent.pk
        and holder is not None
        and not holder.is_live
        and Status.IN_PROGRESS in expected_statuses
        and Issue.objects.adopt_lock(
            issue_id=issue.pk, agent_id=agent.pk, stale_run_id=holder.pk, run_id=run.pk
        )
    ):
        issue = Issue.objects.get(pk=issue.pk)
        _log(
            actor,
            issue,
            LOCK_ADOPTED,
            {"agentId": agent.pk, "runId": run.pk, "previousRunId": holder.pk},
        )
        return issue
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
    issue = _lock(issue)
    if actor.is_agent and issue.assignee_agent_id != actor.agent.pk:
        raise NotAllowed("Only the assignee or the board may release an issue")
    if issue.is_terminal:
        raise InvalidTransition(details={"from": issue.status, "to": Status.TODO, "allowed": []})
    _hold_lock(actor, issue)
    diff = _clear_lock(issue, clear_assignee=True)
    _touch(issue)
    issue.save()
    _log(actor, issue, "issue.released", {"changes": diff})
    return issue


@transaction.atomic
def issue_force_release(
    *, actor: Actor, issue: Issue, clear_assignee: bool = False
) -> tuple[Issue, dict[str, Any]]:
    """The board's escape hatch: drop whatever lock the issue has, live or not.

    Answers the issue and who held it (run, agent, whether that run was still live).
    """
    issue = _lock(issue)
    holder = issue.checkout_run
    previous = {
        "runId": holder.pk if holder else None,
        "agentId": holder.agent_id if holder else issue.assignee_agent_id,
        "runStatus": holder.status if holder else None,
        "runWasLive": bool(holder and holder.is_live),
    }
    diff = _clear_lock(issue, clear_assignee=clear_assignee)
    if diff:
        _touch(issue)
        issue.save()
    _log(actor, issue, "issue.lock_force_released", {"changes": diff, "previousLock": previous})
    return issue, previous


def release_stale_lock(*, actor: Actor, issue: Issue) -> dict[str, Any]:
    """Release one stale lock (the caller holds the row lock): in_progress → todo, assignee
    kept so the agent's next run picks it up. Answers what happened, for the command's report."""
    run_id = issue.checkout_run_id
    _clear_lock(issue, clear_assignee=False)
    _touch(issue)
    issue.save()
    _log(actor, issue, "issue.stale_lock_released", {"runId": run_id, "status": issue.status})
    return {"issueId": issue.pk, "identifier": issue.identifier, "runId": run_id}


# --- Documents (DESIGN §6): append-only revisions, optimistic concurrency on the base ---


@transaction.atomic
def document_put(
    *,
    actor: Actor,
    issue: Issue,
    key: str,
    title: str,
    body: str,
    change_summary: str = "",
    base_revision_id: str | None = None,
) -> tuple[Document, bool]:
    """Create (no base) or revise (the current base) an issue's document; answers (doc, created).

    Writes to one issue's documents queue on the issue's row lock, so of two PUTs naming the
    same base exactly one wins and the other gets 409 with the revision it missed.
    """
    issue = _lock(issue)
    ensure_agent_may_mutate(actor, issue)
    _hold_lock(actor, issue)
    document = Document.objects.filter(issue=issue, key=key).first()
    if document is None and base_revision_id:
        raise Conflict("Document does not exist yet", code="document_missing", details={"key": key})
    if document is not None:
        current = document.latest_revision_id
        if not base_revision_id:
            raise Conflict(
                "Document update requires baseRevisionId",
                code="document_base_required",
                details={"currentRevisionId": current},
            )
        if base_revision_id != current:
            raise Conflict(
                "Document was updated by someone else",
                code="document_stale_base",
                details={"currentRevisionId": current, "baseRevisionId": base_revision_id},
            )
    created = document is None
    if created:
        document = Document.objects.create(
            company_id=issue.company_id, issue=issue, key=key, title=title, body=body
        )
        number = 1
    else:
        number = document.latest_revision.number + 1
        document.title, document.body = title, body
    revision = DocumentRevision.objects.create(
        document=document,
        number=number,
        title=title,
        body=body,
        change_summary=change_summary,
        author_agent=actor.agent,
        author_user=actor.user,
        run_id=actor.run_id,
    )
    document.latest_revision = revision
    document.save()
    _log(
        actor,
        issue,
        "document.created" if created else "document.revised",
        {
            "key": key,
            "revisionId": revision.pk,
            "revision": number,
            "changeSummary": change_summary,
        },
        entity=document,
    )
    return document, created


@transaction.atomic
def document_delete(*, actor: Actor, document: Document) -> None:
    """Delete a document and its revisions (board only); the log keeps what it was."""
    issue = _lock(document.issue)
    _log(
        actor,
        issue,
        "document.deleted",
        {"key": document.key, "revisions": document.revisions.count()},
        entity=document,
    )
    document.delete()


# --- Attachments (DESIGN §6): stored through django-storages, objects removed on commit ---


@transaction.atomic
def attachment_create(
    *, actor: Actor, issue: Issue, upload: UploadedFile, comment: Comment | None = None
) -> Attachment:
    """Store an upload for the issue after checking its size and type; SHA-256 recorded."""
    content_type = accepted_content_type(upload)
    issue = _lock(issue)
    digest = hashlib.sha256()
    for chunk in upload.chunks():  # streamed: large uploads sit in a temporary file
        digest.update(chunk)
    upload.seek(0)
    attachment = Attachment(
        company_id=issue.company_id,
        issue=issue,
        comment=comment,
        original_name=safe_file_name(upload.name or "file"),
        content_type=content_type,
        byte_size=upload.size,
        sha256=digest.hexdigest(),
        created_by_agent=actor.agent,
        created_by_user=actor.user,
    )
    attachment.file.name = default_storage.save(storage_name(attachment), upload)
    try:
        attachment.save()
        _log(
            actor,
            issue,
            "attachment.created",
            {
                "name": attachment.original_name,
                "contentType": content_type,
                "byteSize": attachment.byte_size,
                "sha256": attachment.sha256,
            },
            entity=attachment,
        )
    except Exception:
        default_storage.delete(attachment.file.name)  # no row, so no object either
        raise
    return attachment


@transaction.atomic
def attachment_delete(*, actor: Actor, attachment: Attachment) -> None:
    """Delete the row now and the stored object once the transaction has committed."""
    issue = _lock(attachment.issue)
    _log(actor, issue, "attachment.deleted", {"name": attachment.original_name}, entity=attachment)
    name = attachment.file.name
    attachment.delete()
    delete_stored_on_commit([name])


# --- Approvals (DESIGN §6): board decisions, idempotent, waking the requester ---

DECISIONS = {
    "approve": Approval.Status.APPROVED,
    "reject": Approval.Status.REJECTED,
    "request_revision": Approval.Status.REVISION_REQUESTED,
}


def _approval_log(actor: Actor, approval: Approval, action: str, details: dict[str, Any]) -> None:
    activity_record(
        actor=actor,
        company_id=approval.company_id,
        action=action,
        entity_type="approval",
        entity_id=approval.pk,
        details=details,
    )


@transaction.atomic
def approval_create(
    *, actor: Actor, company: Company, type: str, payload: dict[str, Any], issues: list[Issue]
) -> Approval:
    """An agent (or the board) asks the board for a decision, linking the issues it concerns."""
    approval = Approval.objects.create(
        company=company,
        type=type,
        payload=payload,
        requested_by_agent=actor.agent,
        requested_by_user=actor.user,
    )
    approval.issues.set(issues)
    _approval_log(
        actor, approval, "approval.created", {"type": type, "issueIds": [i.pk for i in issues]}
    )
    return approval


def _lock_approval(approval: Approval) -> Approval:
    return Approval.objects.select_for_update().get(pk=approval.pk)


@transaction.atomic
def approval_decide(*, actor: Actor, approval: Approval, decision: str, note: str = "") -> Approval:
    """approve / reject / request_revision (board only). Repeating the decision the approval
    already has changes nothing and logs nothing; a different one after a decision is a 422.

    The requesting agent is woken with the approval id, its status and the linked issues.
    """
    approval = _lock_approval(approval)
    target = DECISIONS[decision]
    if approval.status == target:
        return approval
    previous = approval.status
    getattr(approval, decision)()
    approval.decided_by_user = actor.user
    approval.decision_note = note
    approval.save()
    _approval_log(
        actor,
        approval,
        f"approval.{target}",
        {"status": {"from": previous, "to": target}, "note": note},
    )
    wakes = Wakes(actor)
    linked = list(approval.issues.values_list("pk", flat=True))
    wakes.add(
        approval.requested_by_agent,
        Source.AUTOMATION,
        f"approval_{target}",
        approvalId=approval.pk,
        approvalStatus=target,
        linkedIssueIds=linked,
    )
    wakes.send(issue_id=linked[0] if len(linked) == 1 else None)
    return approval


@transaction.atomic
def approval_resubmit(
    *, actor: Actor, approval: Approval, payload: dict[str, Any] | None = None
) -> Approval:
    """The requesting agent sends a revised request back for a decision."""
    approval = _lock_approval(approval)
    if not (actor.is_agent and approval.requested_by_agent_id == actor.agent.pk):
        raise NotAllowed("Only the requesting agent may resubmit an approval")
    approval.resubmit()
    if payload is not None:
        approval.payload = payload
    approval.save()
    _approval_log(actor, approval, "approval.resubmitted", {"status": approval.status})
    return approval


@transaction.atomic
def approval_comment_create(*, actor: Actor, approval: Approval, body: str) -> ApprovalComment:
    comment = ApprovalComment.objects.create(
        company_id=approval.company_id,
        approval=approval,
        author_agent=actor.agent,
        author_user=actor.user,
        body=body,
    )
    _approval_log(actor, approval, "approval.comment_added", {"commentId": comment.pk})
    return comment


@transaction.atomic
def approval_link_issue(*, actor: Actor, approval: Approval, issue: Issue) -> Approval:
    """Link an issue to an approval (idempotent: an existing link logs nothing)."""
    if approval.issues.filter(pk=issue.pk).exists():
        return approval
    approval.issues.add(issue)
    _log(actor, issue, "approval.issue_linked", {"approvalId": approval.pk}, entity=approval)
    return approval


# --- Goals, projects and labels: plain records, each write logged ---


@transaction.atomic
def record_create(*, actor: Actor, company: Company, model: type, data: dict[str, Any]):
    """Create a goal, project or label of the company (many-to-many values set after)."""
    data = dict(data)
    m2m = {f.name: data.pop(f.name) for f in model._meta.many_to_many if f.name in data}
    record = model.objects.create(company=company, **data)
    for name, values in m2m.items():
        getattr(record, name).set(values)
    activity_record(
        actor=actor,
        company_id=company.pk,
        action=f"{model._meta.model_name}.created",
        entity_type=model._meta.model_name,
        entity_id=record.pk,
        details={"name": str(record)},
    )
    return record


@transaction.atomic
def record_update(*, actor: Actor, record, changes: dict[str, Any]):
    model = type(record)
    record = model.objects.select_for_update().get(pk=record.pk)
    changes = dict(changes)
    if isinstance(record, Goal) and "parent" in changes:
        _refuse_cycle(record, changes["parent"], kind="A goal")
    m2m = {f.name: changes.pop(f.name) for f in model._meta.many_to_many if f.name in changes}
    diff = apply_changes(record, changes)
    for name, values in m2m.items():
        before = set(getattr(record, name).values_list("pk", flat=True))
        after = {value.pk for value in values}
        if before != after:
            getattr(record, name).set(values)
            diff[camel(name[:-1] + "_ids")] = {"from": sorted(before), "to": sorted(after)}
    if diff:
        record.save()
        activity_record(
            actor=actor,
            company_id=record.company_id,
            action=f"{model._meta.model_name}.updated",
            entity_type=model._meta.model_name,
            entity_id=record.pk,
            details={"changes": diff},
        )
    return record


@transaction.atomic
def record_delete(*, actor: Actor, record) -> None:
    """Delete a goal, project or label; issues keep existing without it."""
    model_name = record._meta.model_name
    activity_record(
        actor=actor,
        company_id=record.company_id,
        action=f"{model_name}.deleted",
        entity_type=model_name,
        entity_id=record.pk,
        details={"name": str(record)},
    )
    record.delete()
