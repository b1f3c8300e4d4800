"""The company dashboard (DESIGN §10): one read of where the company stands.

Agents and issues by status, stale locks, live runs, this month's spend against the budget,
pending approvals and the ten newest activity rows: seven queries whatever the company's size.
It reads every app's rows, so its imports look up at `agents` and `issues` from inside the
function (as `companies.services` does for budgets), and nothing imports it but the API view.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Count

from companies.models import ActivityEvent, Company

RECENT_ACTIVITY = 10


def utilization_percent(spent_cents: Decimal, budget_cents: int) -> float:
    """Spend as a percentage of the budget, two decimals; 0 when there is no budget (0 = none)."""
    if not budget_cents:
        return 0.0
    return float(round(spent_cents * 100 / budget_cents, 2))


def by_status(rows, statuses) -> dict[str, int]:
    """Every status (zero included, so the shape never changes) → how many rows have it."""
    counts = dict.fromkeys(statuses, 0)
    counts.update(rows.order_by().values_list("status").annotate(n=Count("pk")))
    return counts


def company_dashboard(company: Company) -> dict[str, Any]:
    """The dashboard of `company` (the caller's right to see it is checked by the view's
    company lookup). Issues are those on the board (hidden ones left out, as in the list)."""
    from agents.models import Agent, HeartbeatRun, whole_cents
    from issues.models import Approval, CostEvent, Issue, Status

    issues = Issue.objects.for_company(company.pk)
    spent = CostEvent.objects.filter(company=company).this_month().cents()
    return {
        "company_id": company.pk,
        "agents": by_status(Agent.objects.for_company(company.pk), Agent.Status.values),
        "issues": by_status(issues.visible_on_board(), Status.values),
        "stale_locks": issues.stale_locks().count(),
        "live_runs": HeartbeatRun.objects.for_company(company.pk).live().count(),
        "spend": {
            "month_spend_cents": whole_cents(spent),
            "month_budget_cents": company.budget_monthly_cents,
            "utilization_percent": utilization_percent(spent, company.budget_monthly_cents),
        },
        "pending_approvals": Approval.objects.for_company(company.pk)
        .filter(status=Approval.Status.PENDING)
        .count(),
        "recent_activity": list(
            ActivityEvent.objects.for_company(company.pk).order_by("-created_at", "-id")[
                :RECENT_ACTIVITY
            ]
        ),
    }
