"""Approvals (DESIGN §6): board decisions, idempotent, waking the requester."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from agents.models import Agent
from agents.services import agent_create, refuse_taken_name, validate_adapter_config
from agents.wakeups import Source, Wakes
from companies.models import Company
from companies.services import log_change
from issues.models import (
    Approval,
    ApprovalComment,
    Issue,
)
from issues.services.costs import lift_stop
from issues.services.relations import check_same_company
from issues.services.rows import log
from paperclip.access import ensure_board, ensure_can_write, refuse_other_caller
from paperclip.actors import Actor
from paperclip.errors import (
    NotAllowed,
    Unprocessable,
    ValidationFailed,
)
from paperclip.naming import camel

BUDGET_OVERRIDE = Approval.Type.BUDGET_OVERRIDE_REQUIRED

DECISIONS = {
    "approve": Approval.Status.APPROVED,
    "reject": Approval.Status.REJECTED,
    "request_revision": Approval.Status.REVISION_REQUESTED,
}


@transaction.atomic
def approval_create(
    *,
    actor: Actor,
    company: Company,
    type: str,
    payload: dict[str, Any],
    issues: list[Issue],
    requested_by_agent_id: str | None = None,
) -> Approval:
    """An agent (or the board) asks the board for a decision, linking the issues it concerns.
    The requester is the caller (`requested_by_agent_id`, when sent, must name it)."""
    ensure_can_write(actor, company.pk)
    refuse_other_caller(actor, requested_by_agent_id, field="requestedByAgentId", prefix="agt")
    check_same_company(company.pk, {"issue_ids": issues})
    if type == Approval.Type.HIRE_AGENT:
        _check_hire_request(actor, company.pk, payload)
    approval = Approval.objects.create(
        company=company,
        type=type,
        payload=payload,
        requested_by_agent=actor.agent,
        requested_by_user=actor.user,
    )
    approval.issues.set(issues)
    log_change(
        actor, approval, "approval.created", {"type": type, "issueIds": [i.pk for i in issues]}
    )
    return approval


def _lock_approval(approval: Approval) -> Approval:
    return Approval.objects.select_for_update().get(pk=approval.pk)


# A hire_agent payload as Paperclip sends it (camelCase) → the agent field it fills.
HIRE_FIELDS = {
    "name": "name",
    "role": "role",
    "title": "title",
    "capabilities": "capabilities",
    "reportsTo": "reports_to",
    "adapterType": "adapter_type",
    "adapterConfig": "adapter_config",
    "budgetMonthlyCents": "budget_monthly_cents",
}


def _refusal_details(check, *args) -> dict[str, Any]:
    """What an agent service's own check refuses, as payload problems (the same rule, once)."""
    try:
        check(*args)
    except ValidationFailed as exc:
        return exc.details
    return {}


def hire_agent_data(
    company_id: str, payload: Any, *, require_name: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `agent_create` data a hire_agent payload makes, and its problems keyed by payload
    field (`{}` when it can make an agent). Keys other than `HIRE_FIELDS` are the requester's
    notes and are ignored; a name is required only when the agent is about to be made."""
    if not isinstance(payload, dict):
        return {}, {"nonFieldErrors": ["Must be a JSON object."]}
    data: dict[str, Any] = {}
    problems: dict[str, Any] = {}
    for key, field in HIRE_FIELDS.items():
        value = payload.get(key)
        if value is None:
            continue
        if field in {"name", "title", "capabilities", "role", "adapter_type"}:
            if not isinstance(value, str):
                problems[key] = ["Must be a string."]
                continue
            value = value.strip()
        data[field] = value
    if "name" not in problems and not data.get("name"):
        data.pop("name", None)
        if require_name:
            problems["name"] = ["A hire needs the agent's name."]
    for field, choices in (("role", Agent.Role), ("adapter_type", Agent.Adapter)):
        if field in data and data[field] not in choices.values:
            problems[camel(field)] = [f"Must be one of: {', '.join(choices.values)}."]
    budget = data.get("budget_monthly_cents")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
        problems["budgetMonthlyCents"] = ["Must be a whole number of cents."]
    if data.get("adapter_config") is not None:
        problems |= _refusal_details(validate_adapter_config, data["adapter_config"])
    if "reports_to" in data:
        ref = data["reports_to"]
        manager = None
        if isinstance(ref, str):
            manager = Agent.objects.for_company(company_id).by_ref(ref).first()
        if manager is None:
            problems["reportsTo"] = ["Names no agent of this company."]
        data["reports_to"] = manager
    if "name" in data and "name" not in problems:
        problems |= _refusal_details(refuse_taken_name, company_id, data["name"])
    if not problems:  # lengths and ranges, as the model declares them
        checked = set(data) - {"reports_to"}
        try:
            Agent(company_id=company_id, **data).full_clean(
                exclude=[f.name for f in Agent._meta.fields if f.name not in checked],
                validate_unique=False,
                validate_constraints=False,
            )
        except DjangoValidationError as exc:
            problems = {camel(field): messages for field, messages in exc.message_dict.items()}
    return data, problems


# What a process agent runs: set by the board alone, never asked for by an agent (issue 13).
COMMAND_KEYS = ("command", "args", "cwd", "env")


def _check_hire_request(actor: Actor, company_id: str, payload: Any) -> None:
    """When a hire is asked for (or resubmitted): a payload field that could never make an
    agent is a 400 naming it. The name may still be missing: it can come with a revision. An
    agent may not name the command a hire would run (403): the board configures that."""
    config = payload.get("adapterConfig") if isinstance(payload, dict) else None
    if actor.is_agent and isinstance(config, dict) and set(COMMAND_KEYS) & set(config):
        raise NotAllowed(
            "Only the board sets the command an agent runs",
            details={"adapterConfig": sorted(set(COMMAND_KEYS) & set(config))},
        )
    _, problems = hire_agent_data(company_id, payload, require_name=False)
    if problems:
        raise ValidationFailed(details={"payload": problems})


def _hire(actor: Actor, approval: Approval) -> Agent:
    """Make the agent an approved hire_agent approval asks for, through `agent_create` (its own
    activity row), and record it on the approval as `payload.agentId`. A payload that cannot
    make an agent refuses the decision (422 naming the payload field), so nothing is decided."""
    data, problems = hire_agent_data(approval.company_id, approval.payload)
    if not problems:
        try:
            agent = agent_create(actor=actor, company=approval.company, data=data)
        except IntegrityError:  # the name was taken since we looked (a concurrent hire)
            problems = {"name": ["An agent with this name already exists."]}
    if problems:
        fields = ", ".join(f"payload.{key}" for key in problems)
        raise Unprocessable(
            f"The hire_agent payload cannot make an agent ({fields})",
            code="invalid_hire_payload",
            details={"payload": problems},
        )
    approval.payload = {**approval.payload, "agentId": agent.pk}
    return agent


@transaction.atomic
def approval_decide(
    *,
    actor: Actor,
    approval: Approval,
    decision: str,
    note: str = "",
    decided_by_user_id: str | None = None,
) -> Approval:
    """approve / reject / request_revision (board only; `decided_by_user_id`, when sent, must
    name the caller). Repeating the decision the approval already has changes nothing and logs
    nothing; a different one after a decision is a 422.

    Approving a hire_agent approval hires the agent its payload describes, in this transaction,
    and records it as `payload.agentId`; the row lock and the early return make that once.
    Approving a budget override resumes the agents the budget stopped (`costs.lift_stop`).

    The requesting agent is woken with the approval id, its status and the linked issues.
    """
    approval = _lock_approval(approval)
    target = DECISIONS[decision]
    ensure_board(actor, approval.company_id)
    refuse_other_caller(actor, decided_by_user_id, field="decidedByUserId", prefix="usr")
    if approval.status == target:
        return approval
    previous = approval.status
    getattr(approval, decision)()
    hired = None
    if target == Approval.Status.APPROVED and approval.type == Approval.Type.HIRE_AGENT:
        hired = _hire(actor, approval)
    if target == Approval.Status.APPROVED and approval.type == BUDGET_OVERRIDE:
        lift_stop(actor, approval)
    approval.decided_by_user = actor.user
    approval.decision_note = note
    approval.save()
    log_change(
        actor,
        approval,
        f"approval.{target}",
        {"status": {"from": previous, "to": target}, "note": note}
        | ({"agentId": hired.pk} if hired else {}),
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
        if approval.type == Approval.Type.HIRE_AGENT:
            _check_hire_request(actor, approval.company_id, payload)
        approval.payload = payload
    approval.save()
    log_change(actor, approval, "approval.resubmitted", {"status": approval.status})
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
    log_change(actor, approval, "approval.comment_added", {"commentId": comment.pk})
    return comment


@transaction.atomic
def approval_link_issue(*, actor: Actor, approval: Approval, issue: Issue) -> Approval:
    """Link an issue to an approval (idempotent: an existing link logs nothing)."""
    ensure_can_write(actor, approval.company_id)
    check_same_company(approval.company_id, {"issue_id": issue})
    if approval.issues.filter(pk=issue.pk).exists():
        return approval
    approval.issues.add(issue)
    log(actor, issue, "approval.issue_linked", {"approvalId": approval.pk}, entity=approval)
    return approval
