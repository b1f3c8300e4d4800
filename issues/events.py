"""Domain events (DESIGN §9): which activity becomes which event, what the event says, and its
fan-out to the webhook endpoints that subscribed to it.

**Where events come from.** Every issue activity row goes through `issues.services.rows.log`,
and every approval and agent row through `companies.services.log_change` (announced to
`on_logged_change` by `paperclip.events`). Both hand the row's action to `event_type_for`, the
one mapping from activity actions to event types; an action it does not name (a document
revised, a key created) is no event. So `/api`, `/v1`, the admin and the commands, which all call
the same services, emit the same events.

**The outbox is a table, not the activity log read with a cursor.** Activity ids are ULIDs minted
before their transaction commits, so rows commit out of id order: a dispatcher that had read
"everything after id X" would never see a row with a smaller id that committed after it looked,
and that event would be lost. So each event is one `Event` row (one INSERT, in the transaction of
its activity row) with `dispatched_at` null; `dispatch_events` picks undispatched rows with
`SELECT ... FOR UPDATE SKIP LOCKED` (two workers never take the same event; a partial index holds
only the undispatched), writes a pending `WebhookDelivery` for each subscribed active endpoint and
marks the events dispatched, all in one transaction. A worker killed mid-way commits nothing, and
the events are picked up again by the next dispatch: at-least-once, receivers dedupe on
`webhook-id` (the event id, the same on every attempt).

**The payload is built when the event happens**, so `data.task` is the task as that change left
it, not as a later change did before the dispatcher ran. Cost on the write path: the one INSERT,
and the reads the `/v1` task object needs (labels, dependencies, the run holding it: up to three
SELECTs); `previous` comes from the diff the service already logged, without a query, except old
label ids that are read back as names. The dispatch is queued with `transaction.on_commit` (a task
row per event, written after the commit, outside the hot transaction); a dispatch that finds
nothing left returns at once, and each dispatch also takes whatever earlier ones left behind.

Approval and agent events keep it simple: `data` carries the approval or the agent (a few of its
fields, `/v1` ids) instead of `task`, and `previous` its old status when it changed.
`budget.breached` carries `data.budget`: `{scope: company|agent|task, id, level: soft|hard,
budgetCents, spentCents}` (and the task, for a task's budget).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from agents.delivery import queue_attempt
from agents.events import ALL, event_envelope
from agents.models import CHECKED_OUT, LOCK_ADOPTED, Agent, WebhookEndpoint
from issues.models import Approval, Event, Issue, Label, Priority, Status
from issues.projection import task_state
from paperclip.actors import Actor
from paperclip.api.fields import DateTimeField

# Activity action → event type: the one place that says which activity is which event.
EVENT_FOR_ACTION: dict[str, str] = {
    "issue.created": "issue.created",
    "issue.assigned": "issue.assigned",
    "issue.reassigned": "issue.reassigned",
    "issue.started": "issue.started",  # a `/v1` claim
    CHECKED_OUT: "issue.started",  # `/api` checkout: a run claims it too
    "issue.progress": "issue.progress",
    "issue.review": "issue.review",
    "issue.done": "issue.done",  # a review that accepted
    "issue.failed": "issue.failed",
    "issue.cancelled": "issue.cancelled",
    "issue.handoff": "issue.handoff",
    "issue.updated": "issue.updated",  # a status change says more: `_EVENT_FOR_STATUS`
    "issue.changes_requested": "issue.updated",
    "issue.released": "issue.updated",
    "issue.lock_force_released": "issue.updated",
    "issue.stale_lock_released": "issue.updated",  # a lease expired: back to assigned
    LOCK_ADOPTED: "issue.updated",
    "issue.reopened": "issue.reopened",
    "issue.comment_added": "issue.commented",
    "approval.created": "approval.created",
    f"approval.{Approval.Status.APPROVED}": "approval.decided",
    f"approval.{Approval.Status.REJECTED}": "approval.decided",
    f"approval.{Approval.Status.REVISION_REQUESTED}": "approval.decided",
    "agent.paused": "agent.paused",
    "agent.resumed": "agent.resumed",
    "agent.terminated": "agent.terminated",
    "budget.breached": "budget.breached",
}

# An `issue.updated` (`/api` PATCH, the admin) that moved the status is the event of where it
# went, as the verbs of `/v1` would have named it.
_EVENT_FOR_STATUS: dict[str, str] = {
    "in_progress": "issue.started",
    "in_review": "issue.review",
    "done": "issue.done",
    "failed": "issue.failed",
    "cancelled": "issue.cancelled",
    "blocked": "issue.handoff",
}


def _changes(details: dict[str, Any]) -> dict[str, Any]:
    """The `{wireName: {"from", "to"}}` diff an activity row carries (claims log `status` beside
    it)."""
    changes = dict(details.get("changes") or {})
    if isinstance(details.get("status"), dict):
        changes.setdefault("status", details["status"])
    return changes


def event_type_for(action: str, details: dict[str, Any]) -> str | None:
    """The event an activity row is, or None when it is none."""
    event_type = EVENT_FOR_ACTION.get(action)
    if event_type != "issue.updated" or action != "issue.updated":
        return event_type
    changes = _changes(details)
    if "status" in changes:
        specific = _EVENT_FOR_STATUS.get(changes["status"]["to"])
        if specific:
            return specific
    if "assigneeAgentId" in changes:
        before, after = changes["assigneeAgentId"]["from"], changes["assigneeAgentId"]["to"]
        if after is not None:
            return "issue.assigned" if before is None else "issue.reassigned"
    return event_type


# -- payloads --------------------------------------------------------------------------------


def _previous(
    issue: Issue, task: dict[str, Any], changes: dict[str, Any], run_id: str | None
) -> dict[str, Any]:
    """The `/v1` fields the change altered, with their old values, from the logged diff."""
    old: dict[str, Any] = {}
    simple = {
        "title": "title",
        "description": "description",
        "parentId": "parentId",
        "teamId": "assignedTeamId",
        "assigneeAgentId": "assignedAgentId",
        "checkoutRunId": "currentRunId",
        "dependencyIds": "dependencies",
    }
    for wire_name, field in simple.items():
        if wire_name in changes:
            old[field] = changes[wire_name]["from"]
    if "priority" in changes:
        old["priority"] = Priority(changes["priority"]["from"]).label
    if "dueAt" in changes:
        due = changes["dueAt"]["from"]
        old["dueAt"] = DateTimeField().to_representation(due) if due else None
    if "budgetUsd" in changes:
        budget = changes["budgetUsd"]["from"]
        per_task = float(budget) if budget is not None else None
        old["budget"] = task["budget"] | {"perTaskUsd": per_task}
    if "labelIds" in changes:
        ids = changes["labelIds"]["from"]
        old["labels"] = sorted(Label.objects.filter(pk__in=ids).values_list("name", flat=True))
    if "status" in changes:
        if "assigneeAgentId" in changes or "assigneeUserId" in changes:
            agent = changes.get("assigneeAgentId", {}).get("from", issue.assignee_agent_id)
            user = changes.get("assigneeUserId", {}).get("from", issue.assignee_user_id)
            assigned = agent is not None or user is not None
        else:
            assigned = issue.assignee_agent_id is not None or issue.assignee_user_id is not None
        old["status"] = task_state(changes["status"]["from"], assigned)
        # Only a running task has a current run: one that starts had none, one that stops had
        # the run that held it.
        if changes["status"]["from"] != Status.IN_PROGRESS:
            old["currentRunId"] = None
        elif "currentRunId" not in old:
            old["currentRunId"] = run_id
    elif "assigneeAgentId" in changes and issue.status == Status.TODO:
        # Assigning todo work moves it from queued to assigned on `/v1`.
        old["status"] = task_state(issue.status, changes["assigneeAgentId"]["from"] is not None)
    if issue.status_reason != issue.status_reason_as_loaded:  # set by the services, not logged
        old["statusReason"] = issue.status_reason_as_loaded or None
    return {field: value for field, value in old.items() if value != task.get(field)}


def _task(issue: Issue) -> dict[str, Any]:
    from issues.v1.tasks import TaskSerializer  # the `/v1` views import the services

    return dict(TaskSerializer(issue).data)


def _approval(approval: Approval) -> dict[str, Any]:
    return {
        "id": approval.pk,
        "companyId": approval.company_id,
        "type": approval.type,
        "status": approval.status,
        "requestedByAgentId": approval.requested_by_agent_id,
        "decisionNote": approval.decision_note,
    }


def _agent(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.pk,
        "companyId": agent.company_id,
        "name": agent.name,
        "role": agent.role,
        "status": agent.status,
    }


def _write(*, event_type: str, company_id: str, actor: Actor, data: dict[str, Any]) -> Event:
    """The one INSERT of an event, and its dispatch queued for when the transaction commits."""
    payload = event_envelope(event_type=event_type, company_id=company_id, actor=actor, data=data)
    event = Event.objects.create(
        id=payload["id"], company_id=company_id, type=event_type, payload=payload
    )
    transaction.on_commit(dispatch_events.enqueue)
    return event


def emit_issue_event(
    *, actor: Actor, issue: Issue, action: str, details: dict[str, Any]
) -> Event | None:
    """The event of an issue's activity row, if it is one (`issues.services.rows.log`)."""
    event_type = event_type_for(action, details)
    if event_type is None:
        return None
    if event_type == "issue.commented" and _from_holding_run(actor, issue):
        event_type = "issue.progress"  # the run working on it says how it goes
    task = _task(issue)
    previous = (
        {}  # nothing was there before
        if event_type == "issue.created"
        else _previous(issue, task, _changes(details), details.get("runId"))
    )
    data = {"task": task, "previous": previous}
    if event_type == "budget.breached":
        data["budget"] = details
    issue.status_reason_as_loaded = issue.status_reason  # the next change's `previous` starts here
    return _write(event_type=event_type, company_id=issue.company_id, actor=actor, data=data)


def _from_holding_run(actor: Actor, issue: Issue) -> bool:
    return (
        actor.run_id is not None
        and issue.status == Status.IN_PROGRESS
        and issue.checkout_run_id == actor.run_id
    )


def emit_logged_change(*, actor: Actor, entity: Any, activity: Any) -> Event | None:
    """The event of an approval's or an agent's activity row, if it is one (registered with
    `paperclip.events` by `issues.apps`)."""
    event_type = event_type_for(activity.action, activity.details)
    if event_type is None:
        return None
    if event_type == "budget.breached":  # a company's or an agent's budget (DESIGN §10)
        data = {"budget": activity.details, "previous": {}}
        return _write(event_type=event_type, company_id=activity.company_id, actor=actor, data=data)
    if isinstance(entity, Approval):
        data: dict[str, Any] = {"approval": _approval(entity)}
    elif isinstance(entity, Agent):
        data = {"agent": _agent(entity)}
    else:
        return None
    status = (activity.details or {}).get("status")
    data["previous"] = {"status": status["from"]} if isinstance(status, dict) else {}
    return _write(event_type=event_type, company_id=entity.company_id, actor=actor, data=data)


# -- dispatch --------------------------------------------------------------------------------

DISPATCH_BATCH = 100


def subscribed(endpoint: WebhookEndpoint, event_type: str) -> bool:
    return ALL in endpoint.events or event_type in endpoint.events


@task()
def dispatch_events() -> int:
    """Fan undispatched events out to the active endpoints of their company subscribed to them: a
    pending delivery (attempt 1, `event_id` = the event's id) queued for the worker per endpoint,
    and the events marked dispatched, in one transaction per batch. Answers how many events it
    dispatched.

    Rows another dispatcher holds are skipped (it is dispatching them); rows of a dispatcher that
    died are unlocked by its rollback and taken by the next one.
    """
    dispatched = 0
    while True:
        with transaction.atomic():
            events = list(
                Event.objects.undispatched().select_for_update(skip_locked=True)[:DISPATCH_BATCH]
            )
            if not events:
                return dispatched
            endpoints = list(
                WebhookEndpoint.objects.filter(
                    company_id__in={event.company_id for event in events}, active=True
                ).order_by("created_at", "id")
            )
            for event in events:
                for endpoint in endpoints:
                    if endpoint.company_id == event.company_id and subscribed(endpoint, event.type):
                        queue_attempt(
                            endpoint,
                            event_id=event.pk,
                            event_type=event.type,
                            payload=event.payload,
                        )
            Event.objects.filter(pk__in=[event.pk for event in events]).update(
                dispatched_at=timezone.now()
            )
        dispatched += len(events)
