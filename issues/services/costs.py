"""Costs and budgets (DESIGN §10): what is reported, and the stop when a budget is spent.

**The stop happens when the cost is reported**, in the transaction that records it, not when a
run ends. A report locks the rows of the scopes it counts against (company, then agent, then
task: always in that order, so two reports never deadlock), writes the cost, and reads each
scope's spend again. A scope whose spend crossed 80 % of its budget with this report emits a
`budget.breached` soft event; one that crossed 100 % stops:

- an agent: paused with `pauseReason: budget`, its live runs cancelled (they read
  `cancelRequested` on their next heartbeat), a `budget_override_required` approval raised;
  its wakes and writes, checkouts included, are refused with 409 `budget_exhausted`;
- a company: every one of its agents stopped that way, one approval for the company;
- a task (`perTaskUsd`): the run holding it cancelled; new claims are refused.

Crossing is decided under the row lock, so of many reports racing across the line exactly one
crosses it: the agent is paused once and one approval is raised. Spend counts per UTC calendar
month (a task's budget counts everything it ever cost). A cost dated in another month does not
count against this month's budgets.

The board lifts an agent or company stop by approving the override (the spend past the line
stays; the next crossing is next month's) or by raising the budget above the spend.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django_fsm import can_proceed

from agents.models import Agent, HeartbeatRun, PauseReason, this_month, whole_cents
from agents.services import BUDGET_EXHAUSTED, agent_resume, stop_run, transition_agent
from companies.models import Company
from companies.services import log_change
from issues.models import Approval, CostEvent, Issue
from issues.services.relations import check_same_company
from issues.services.rows import lock_issue, log, touch
from paperclip.access import ensure_board
from paperclip.actors import SYSTEM, Actor
from paperclip.errors import NotAllowed, ValidationFailed

SOFT = Decimal("0.8")
CENT = Decimal("0.01")
MAX_CENTS = Decimal(10) ** 12  # CostEvent.cost_cents: 16 digits, 4 of them after the point
MAX_TOKENS = 2**63 - 1  # a PositiveBigIntegerField


def usd_of(cents: Decimal) -> float:
    return float((cents * CENT).quantize(Decimal("0.000001")))


# -- recording --------------------------------------------------------------------------------


@transaction.atomic
def cost_record(*, actor: Actor, company: Company, data: dict[str, Any]) -> CostEvent:
    """`POST /api/companies/{id}/cost-events`: an agent reports its own costs, the board any
    agent's of the company. Recorded even from an agent its budget has paused: the money was
    spent, and the report is how the stop learns of it."""
    agent: Agent = data["agent"]
    if not actor.sees_company(company.pk):
        raise NotAllowed()
    if actor.is_agent and agent.pk != actor.agent.pk:
        raise NotAllowed("An agent reports only its own costs", details={"agentId": agent.pk})
    if not actor.is_agent and not actor.can_write(company.pk) and actor.type != "system":
        raise NotAllowed("Your membership in this company is read-only")
    check_same_company(
        company.pk, {key: data.get(key) for key in ("agent", "issue", "heartbeat_run")}
    )
    run = data.get("heartbeat_run")
    if run is not None and run.agent_id != agent.pk:
        raise ValidationFailed(details={"heartbeatRunId": ["The run is another agent's."]})
    return record(actor, company=company, **data)


def record_run_usage(actor: Actor, run: HeartbeatRun, usage: dict[str, Any]) -> CostEvent | None:
    """A run's finish with `usage` reports what it cost (`costUsd`, else `costCents`; tokens):
    one cost event, or none when it names no cost and no tokens. A value that is not a
    non-negative number counts as nothing: usage is whatever the agent reported, unchecked."""

    def number(key: str) -> Decimal | None:
        value = usage.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            return None
        return Decimal(str(value))

    usd, cents = number("costUsd"), number("costCents")
    tokens = {key: int(number(key) or 0) for key in ("inputTokens", "outputTokens")}
    amount = usd * 100 if usd is not None else cents
    if amount is None and not any(tokens.values()):
        return None
    too_large = [key for key, value in tokens.items() if value > MAX_TOKENS]
    if amount is not None and amount >= MAX_CENTS:
        too_large.insert(0, "costUsd" if usd is not None else "costCents")
    if too_large:  # more than its column holds: a 400 naming it, not the database's 500
        raise ValidationFailed(details={f"usage.{key}": ["Too large."] for key in too_large})
    text = {k: str(usage.get(k) or "")[:100] or "unknown" for k in ("provider", "model")}
    return record(
        actor,
        company=run.agent.company,
        agent=run.agent,
        issue=Issue.objects.filter(pk=run.issue_id).first() if run.issue_id else None,
        heartbeat_run=run,
        provider=text["provider"],
        model=text["model"],
        input_tokens=tokens["inputTokens"],
        output_tokens=tokens["outputTokens"],
        cost_cents=amount or Decimal(0),
    )


def record(actor: Actor, *, company: Company, agent: Agent, issue: Issue | None = None, **fields):
    """Write one cost and enforce the budgets it counts against (in the caller's transaction)."""
    if issue is not None:
        issue = lock_issue(issue)
        touch(issue)  # its spent changes: a new version, so a new ETag
        issue.save(update_fields=["version", "updated_at"])
    scopes = _lock_scopes(company, agent, issue)
    event = CostEvent.objects.create(
        company=company,
        agent=agent,
        issue=issue,
        project_id=issue.project_id if issue else None,
        **fields,
    )
    log_change(
        actor,
        event,
        "cost.reported",
        {
            "agentId": agent.pk,
            "issueId": issue.pk if issue else None,
            "costCents": float(event.cost_cents),
        },
    )
    for scope in scopes:
        scope.check(event)
    return event


# -- scopes -----------------------------------------------------------------------------------


@dataclass
class Scope:
    """One budget a cost counts against: its locked row, the costs that count, its budget."""

    kind: str  # company | agent | task
    row: Company | Agent | Issue
    budget_cents: Decimal

    def costs(self):
        if self.kind == "task":
            return CostEvent.objects.filter(issue=self.row)
        field = "company" if self.kind == "company" else "agent"
        return CostEvent.objects.filter(**{field: self.row}).this_month()

    def check(self, event: CostEvent) -> None:
        start, end = this_month()
        if self.kind != "task" and not start <= event.occurred_at < end:
            return  # another month's cost: not this month's budget
        after = self.costs().cents()
        before = after - event.cost_cents
        for level, line in (("soft", self.budget_cents * SOFT), ("hard", self.budget_cents)):
            if before < line <= after:
                breached(self, level, after)


def _lock_scopes(company: Company, agent: Agent, issue: Issue | None) -> list[Scope]:
    """The scopes with a budget, their rows locked in the order every other writer takes them:
    the issue (as issue writes do), the company (as issue creation does, after a parent issue),
    then the agent (as a heartbeat does, after its run). Runs are never waited for: see
    `_cancel_run`."""
    task = None
    if issue is not None and issue.budget_usd is not None:  # locked by `record`
        task = Scope("task", issue, issue.budget_usd * 100)
    company = Company.objects.select_for_update().get(pk=company.pk)
    agent = Agent.objects.select_for_update().get(pk=agent.pk)
    return [
        scope
        for scope in (
            Scope("company", company, Decimal(company.budget_monthly_cents)),
            Scope("agent", agent, Decimal(agent.budget_monthly_cents)),
            task,
        )
        if scope is not None and scope.budget_cents
    ]


def breached(scope: Scope, level: str, spent: Decimal) -> None:
    """Say so (`budget.breached`), and stop the scope when the budget is spent."""
    details = {
        "scope": scope.kind,
        "id": scope.row.pk,
        "level": level,
        "budgetCents": whole_cents(scope.budget_cents),
        "spentCents": whole_cents(spent),
    }
    if scope.kind == "task":
        log(SYSTEM, scope.row, "budget.breached", details)
    else:
        log_change(SYSTEM, scope.row, "budget.breached", details)
    if level != "hard":
        return
    if scope.kind == "task":
        holder = scope.row.checkout_run
        if holder is not None and holder.is_live:
            _cancel_run(holder)
        return
    agents = [scope.row] if scope.kind == "agent" else scope.row.agents.all()
    for agent in agents:
        _stop_agent(agent)
    _raise_override(scope, details)


def _cancel_run(run: HeartbeatRun) -> None:
    """Cancel a live run, unless its own request holds it right now (a heartbeat, its finish):
    waiting for it could deadlock, since a heartbeat then waits for the agent row held here.
    That request ends soon, and the run's next heartbeat finds its agent stopped
    (`agents.services.run_heartbeat` cancels it then)."""
    run = HeartbeatRun.objects.select_for_update(skip_locked=True).filter(pk=run.pk).first()
    if run is not None and not run.is_terminal:
        stop_run(SYSTEM, run, BUDGET_EXHAUSTED)


def _stop_agent(agent: Agent) -> None:
    agent = Agent.objects.select_for_update().get(pk=agent.pk)
    if can_proceed(agent.pause):  # one its lifecycle may not pause (paused, ...) stays so
        transition_agent(SYSTEM, agent, "pause", "agent.paused", PauseReason.BUDGET)
    for run in HeartbeatRun.objects.filter(agent=agent).live():
        _cancel_run(run)


def _raise_override(scope: Scope, details: dict[str, Any]) -> None:
    """One pending override approval per stopped scope."""
    if _pending_overrides(scope).exists():
        return
    start, _ = this_month()
    approval = Approval.objects.create(
        company_id=scope.row.pk if scope.kind == "company" else scope.row.company_id,
        type=Approval.Type.BUDGET_OVERRIDE_REQUIRED,
        payload={**details, "month": start.strftime("%Y-%m")},
        requested_by_agent=scope.row if scope.kind == "agent" else None,
    )
    log_change(SYSTEM, approval, "approval.created", {"type": approval.type, "issueIds": []})


# -- lifting a stop ---------------------------------------------------------------------------


def lift_stop(actor: Actor, approval: Approval) -> None:
    """An approved override lets the stopped scope work again (`approval_decide`)."""
    scope, scope_id = approval.payload.get("scope"), approval.payload.get("id")
    agents = Agent.objects.filter(company_id=approval.company_id, pause_reason=PauseReason.BUDGET)
    if scope == "agent":
        agents = agents.filter(pk=scope_id)
    for agent in agents:
        _resume(actor, agent)


def _resume(actor: Actor, agent: Agent) -> None:
    """Resume an agent its budget stopped (one the board paused stays paused)."""
    agent = Agent.objects.select_for_update().get(pk=agent.pk)
    if agent.status == Agent.Status.PAUSED and agent.pause_reason == PauseReason.BUDGET:
        agent_resume(actor=actor, agent=agent)


@transaction.atomic
def budget_set(*, actor: Actor, row: Company | Agent, cents: int) -> Company | Agent:
    """`PATCH .../budgets {budgetMonthlyCents}` (board only; 0 = no budget). A budget raised
    above this month's spend lifts its stop (the pending override is no longer needed); one
    lowered to or below it stops the scope now."""
    company_id = row.pk if isinstance(row, Company) else row.company_id
    ensure_board(actor, company_id)
    company = Company.objects.select_for_update().get(pk=company_id)
    row = company if isinstance(row, Company) else Agent.objects.select_for_update().get(pk=row.pk)
    previous = row.budget_monthly_cents
    if previous == cents:
        return row  # nothing changes, nothing is logged
    row.budget_monthly_cents = cents
    row.save(update_fields=["budget_monthly_cents", "updated_at"])
    change = {"budgetMonthlyCents": {"from": previous, "to": cents}}
    log_change(actor, row, "budget.updated", change)
    scope = Scope("company" if row is company else "agent", row, Decimal(cents))
    spent = scope.costs().cents()
    if cents and spent >= cents:
        if not (previous and spent >= previous):  # already past the old line: stopped then
            breached(scope, "hard", spent)
        return row
    for agent in row.agents.all() if row is company else [row]:
        _resume(actor, agent)
    for approval in _pending_overrides(scope).select_for_update():
        approval.cancel()  # no longer needed
        approval.save()
        log_change(actor, approval, "approval.cancelled", {"reason": "budget_raised"})
    return row


def _pending_overrides(scope: Scope):
    return Approval.objects.filter(
        company_id=scope.row.pk if scope.kind == "company" else scope.row.company_id,
        type=Approval.Type.BUDGET_OVERRIDE_REQUIRED,
        status__in=[Approval.Status.PENDING, Approval.Status.REVISION_REQUESTED],
        payload__scope=scope.kind,
        payload__id=scope.row.pk,
    )
