"""The issue page as a thread: what the board reads above the edit form.

`issue_thread` merges the issue's comments, activity rows, runs and document revisions into one
timeline, oldest first (a conversation reads top-down, and the comment box under it is where the
next entry will appear). Each kind is one query whatever its rows, names included (joins or
subqueries), so the page's query count does not grow with the thread.
`issue_essentials` is the compact head: relations, lock, approvals.
"""

from __future__ import annotations

import difflib
from datetime import datetime
from typing import Any

from django.contrib.admin.utils import quote
from django.db.models import OuterRef, Subquery
from django.db.models.fields.json import KT
from django.template.defaultfilters import filesizeformat
from django.urls import get_script_prefix, reverse

from agents.admin import RUN_STATUS_COLOURS
from agents.models import CHECKED_OUT, LOCK_ADOPTED, Agent, HeartbeatRun
from companies.models import ActivityEvent, User
from issues.markdown import render_markdown
from issues.models import Attachment, Comment, Document, DocumentRevision, Issue, Priority
from paperclip.board import wake_reason_html

# Activity rows whose subject the timeline shows as its own entry (the comment, the revision).
SHOWN_AS_ENTRIES = ("issue.comment_added", "document.created", "document.revised")

# Verbs whose row says enough by its name (the `/v1` dialect's and the lifecycle's).
VERBS = {
    "issue.created": "created the issue",
    "issue.released": "released the lock",
    "issue.stale_lock_released": "released a stale lock (its lease had expired)",
    "issue.cancelled": "cancelled it",
    "issue.done": "marked it done",
    "issue.failed": "marked it failed",
    "issue.review": "sent it to review",
    "issue.handoff": "handed it off",
    "issue.started": "started it",
    "issue.progress": "reported progress",
    "issue.commented": "commented",
    "issue.changes_requested": "requested changes",
    "issue.deleted": "deleted the issue",
    "approval.issue_linked": "linked an approval",
}

# Names a row's details may point at, each resolved by a subquery of the activity query.
DETAIL_AGENTS = {
    "agent_ref": "details__agentId",
    "lock_agent_ref": "details__previousLock__agentId",
    "from_agent_ref": "details__changes__assigneeAgentId__from",
    "to_agent_ref": "details__changes__assigneeAgentId__to",
}
DETAIL_USERS = {
    "from_user_ref": "details__changes__assigneeUserId__from",
    "to_user_ref": "details__changes__assigneeUserId__to",
}


def _name_of(model, field: str, ref: str) -> Subquery:
    return Subquery(model.objects.filter(pk=OuterRef(ref)).values(field)[:1])


def _author(row) -> str:
    author = row.author_agent or row.author_user
    return str(author) if author else "someone"


def activity_rows(issue: Issue):
    """The issue's activity rows with every name they mention: one query."""
    refs = {name: KT(path) for name, path in (DETAIL_AGENTS | DETAIL_USERS).items()}
    names = {
        "agent_name": _name_of(Agent, "name", "actor_id"),
        "user_name": _name_of(User, "username", "actor_id"),
        **{f"{ref}_name": _name_of(Agent, "name", ref) for ref in DETAIL_AGENTS},
        **{f"{ref}_name": _name_of(User, "username", ref) for ref in DETAIL_USERS},
    }
    return (
        ActivityEvent.objects.filter(company_id=issue.company_id, issue_id=issue.pk)
        .exclude(action__in=SHOWN_AS_ENTRIES)
        .annotate(**refs)
        .annotate(**names)
        .order_by("created_at", "id")
    )


def actor_name(event: ActivityEvent) -> str:
    if event.actor_type == "agent":
        return event.agent_name or "a removed agent"
    if event.actor_type == "user":
        return event.user_name or "a removed user"
    return "system"


def _changes_sentence(event: ActivityEvent) -> list[str]:
    changes = (event.details or {}).get("changes") or {}
    parts = []
    status = changes.get("status")
    if status:
        parts.append(f"moved {status['from']} → {status['to']}")
    if "assigneeAgentId" in changes or "assigneeUserId" in changes:
        to = event.to_agent_ref_name or event.to_user_ref_name
        was = event.from_agent_ref_name or event.from_user_ref_name
        if to:
            parts.append(f"assigned to {to}" + (f" (was {was})" if was else ""))
        elif was:
            parts.append(f"unassigned {was}")
    if "priority" in changes:
        labels = [
            Priority(v).label.lower()
            for v in (changes["priority"]["from"], changes["priority"]["to"])
        ]
        parts.append(f"priority {labels[0]} → {labels[1]}")
    rest = [
        name.removesuffix("Id").removesuffix("Ids")
        for name in changes
        if name not in ("status", "assigneeAgentId", "assigneeUserId", "priority", "checkoutRunId",
                        "executionLockedAt", "startedAt", "completedAt", "cancelledAt", "failedAt")
    ]  # fmt: skip
    if rest:
        parts.append("changed " + ", ".join(rest))
    return parts


def activity_sentence(event: ActivityEvent) -> str:
    """What the row says happened, in words a triager reads (names, not ids)."""
    details = event.details or {}
    action = event.action
    if action == CHECKED_OUT:
        status = details.get("status") or {}
        head = f"checked out by {event.agent_ref_name or 'an agent'}'s run"
        move = f" ({status['from']} → {status['to']})" if status.get("from") else ""
        return head + move
    if action == LOCK_ADOPTED:
        return f"lock adopted by {event.agent_ref_name or 'an agent'}'s run"
    if action == "issue.lock_force_released":
        previous = details.get("previousLock") or {}
        if previous.get("runId"):
            state = "live" if previous.get("runWasLive") else "stale"
            holder = event.lock_agent_ref_name or "an agent"
            return f"force-released the lock of {holder}'s run ({state})"
        return "force-released the lock (none was held)"
    if action == "issue.reopened":
        return f"reopened it ({details.get('reopenedFrom')} → {details.get('status')})"
    if action == "attachment.created":
        return f"attached {details.get('name', 'a file')}"
    if action == "attachment.deleted":
        return f"deleted the attachment {details.get('name', '')}".rstrip()
    if action == "document.deleted":
        return f"deleted the document {details.get('key', '')}".rstrip()
    parts = _changes_sentence(event)
    verb = VERBS.get(action)
    if verb and not parts:
        return verb
    if verb and action not in ("issue.updated", "issue.assigned", "issue.reassigned"):
        return f"{verb}: {'; '.join(parts)}"
    if parts:
        return "; ".join(parts)
    return verb or action.split(".", 1)[-1].replace("_", " ")


def _entry(kind: str, at: datetime, who: str, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "at": at, "who": who, **fields}


def issue_thread(issue: Issue) -> list[dict[str, Any]]:
    """The timeline, oldest first: four queries (comments, activity, runs, revisions)."""
    entries = []
    comments = Comment.objects.filter(company_id=issue.company_id, issue=issue).select_related(
        "author_agent", "author_user"
    )
    for comment in comments:
        entries.append(
            _entry(
                "comment", comment.created_at, _author(comment), body=render_markdown(comment.body)
            )
        )
    for event in activity_rows(issue):
        entries.append(
            _entry("activity", event.created_at, actor_name(event), text=activity_sentence(event))
        )
    runs = HeartbeatRun.objects.for_issue(issue.pk, company_id=issue.company_id).select_related(
        "agent"
    )
    for run in runs:
        entries.append(
            _entry(
                "run",
                run.started_at or run.created_at,
                run.agent.name,
                run=run,
                url=reverse("admin:agents_heartbeatrun_change", args=[quote(run.pk)]),
                live=run.is_live,
                colour=RUN_STATUS_COLOURS.get(run.status, ""),
                woken_by=wake_reason_html(run.wake_reason) if run.wake_reason else "",
            )
        )
    revisions = (
        DocumentRevision.objects.filter(document__issue=issue)
        .select_related("document", "author_agent", "author_user")
        .order_by("created_at", "number")
    )
    for revision in revisions:
        entries.append(
            _entry(
                "revision",
                revision.created_at,
                _author(revision),
                revision=revision,
                key=revision.document.key,
                diff_url=reverse(
                    "admin:issues_issue_revision_diff", args=[quote(issue.pk), quote(revision.pk)]
                ),
            )
        )
    order = {"activity": 0, "run": 1, "revision": 2, "comment": 3}
    entries.sort(key=lambda entry: (entry["at"], order[entry["kind"]]))
    return entries


def issue_essentials(issue: Issue) -> dict[str, Any]:
    """The head of the page: lock, children, approvals, documents and attachments (a query
    each)."""
    lock = None
    if issue.checkout_run_id:
        run = HeartbeatRun.objects.select_related("agent").filter(pk=issue.checkout_run_id).first()
        if run is not None:
            lock = {
                "run": run,
                "url": reverse("admin:agents_heartbeatrun_change", args=[quote(run.pk)]),
                "live": run.is_live,
            }
    children = list(
        Issue.objects.filter(company_id=issue.company_id, parent_id=issue.pk)
        .order_by("number")
        .values("pk", "identifier", "title", "status")
    )
    for child in children:
        child["url"] = reverse("admin:issues_issue_change", args=[quote(child["pk"])])
    approvals = list(issue.approvals.order_by("created_at"))
    documents = Document.objects.filter(company_id=issue.company_id, issue=issue).select_related(
        "latest_revision"
    )
    attachments = Attachment.objects.filter(company_id=issue.company_id, issue=issue).order_by(
        "created_at"
    )
    return {
        "documents": [
            {
                "document": document,
                "revision": document.latest_revision,
                "url": reverse("admin:issues_document_change", args=[quote(document.pk)]),
                "diff_url": document.latest_revision_id
                and reverse(
                    "admin:issues_issue_revision_diff",
                    args=[quote(issue.pk), quote(document.latest_revision_id)],
                ),
            }
            for document in documents
        ],
        "attachments": [
            {
                "attachment": attachment,
                "size": filesizeformat(attachment.byte_size),
                # The API's `contentPath`: served with nosniff, and as a download when executable.
                "download": f"{get_script_prefix()}api/attachments/{attachment.pk}/content",
            }
            for attachment in attachments
        ],
        "lock": lock,
        "children": children,
        "approvals": [
            {
                "approval": approval,
                "url": reverse("admin:issues_approval_change", args=[quote(approval.pk)]),
            }
            for approval in approvals
        ],
    }


def revision_diff(revision: DocumentRevision) -> dict[str, Any]:
    """A revision against the one before it, as unified-diff lines (escaped by the template)."""
    previous = (
        DocumentRevision.objects.filter(
            document_id=revision.document_id, number__lt=revision.number
        )
        .order_by("-number")
        .first()
    )
    before = previous.body if previous else ""
    lines = list(
        difflib.unified_diff(
            before.splitlines(),
            revision.body.splitlines(),
            fromfile=f"r{previous.number}" if previous else "(none)",
            tofile=f"r{revision.number}",
            lineterm="",
        )
    )
    kinds = []
    for line in lines:
        if line.startswith(("+++", "---")):
            kinds.append(("file", line))
        elif line.startswith("@@"):
            kinds.append(("hunk", line))
        elif line.startswith("+"):
            kinds.append(("add", line))
        elif line.startswith("-"):
            kinds.append(("del", line))
        else:
            kinds.append(("same", line))
    return {"previous": previous, "lines": kinds}
