"""Approvals (DESIGN §6): board decisions, idempotent, waking the requester."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from agents.wakeups import Source, Wakes
from companies.models import Company
from companies.services import activity_record
from issues.models import (
    Approval,
    ApprovalComment,
    Issue,
)
from issues.services.rows import log
from paperclip.access import ensure_board, ensure_can_write
from paperclip.actors import Actor
from paperclip.errors import (
    NotAllowed,
)

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
    ensure_can_write(actor, company.pk)
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
    ensure_board(actor, approval.company_id)
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
    ensure_can_write(actor, approval.company_id)
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
    ensure_can_write(actor, approval.company_id)
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
    ensure_can_write(actor, approval.company_id)
    if approval.issues.filter(pk=issue.pk).exists():
        return approval
    approval.issues.add(issue)
    log(actor, issue, "approval.issue_linked", {"approvalId": approval.pk}, entity=approval)
    return approval
