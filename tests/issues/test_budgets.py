"""Budgets stop the spend when the cost is reported (DESIGN §10), not when a run ends.

Costs are reported the way agents report them: a run's `finish` with `usage`. An agent's
budget at 80 % says so (`budget.breached`, soft); at 100 % the agent is paused for its budget,
its other live runs read `cancelRequested`, its wakes and checkouts get 409 `budget_exhausted`,
and one `budget_override_required` approval waits for the board. Approving it, or raising the
budget, lets the agent work again. A company over budget stops all its agents; a task over its
own budget stops the run holding it.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.models import Agent
from companies.models import ActivityEvent
from issues.models import Approval, Event, Status
from tests import factories
from tests.conftest import client_for
from tests.factories import live_run

pytestmark = pytest.mark.django_db

OVERRIDE = Approval.Type.BUDGET_OVERRIDE_REQUIRED


def key_of(agent: Agent) -> str:
    return factories.AgentApiKeyFactory(agent=agent).token


def spend(agent: Agent, cents: int, **run_fields):
    """The agent's run ends having spent `cents`: its finish reports the usage."""
    run = live_run(agent, **run_fields)
    response = client_for(key_of(agent), run_id=run.pk).post(
        f"/api/heartbeat-runs/{run.pk}/finish",
        {"status": "succeeded", "usage": {"costCents": cents, "model": "claude-sonnet-4"}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    return run


def breaches() -> list[tuple[str, str]]:
    return [
        (event.payload["data"]["budget"]["scope"], event.payload["data"]["budget"]["level"])
        for event in Event.objects.filter(type="budget.breached").order_by("created_at", "id")
    ]


def overrides():
    return Approval.objects.filter(type=OVERRIDE)


@pytest.fixture
def budgeted(agent):
    agent.budget_monthly_cents = 1000
    agent.save()
    return agent


# -- the agent's budget ------------------------------------------------------------------------


def test_under_80_percent_nothing_happens(budgeted):
    spend(budgeted, 799)

    budgeted.refresh_from_db()
    assert (budgeted.status, breaches(), overrides().count()) == ("active", [], 0)


def test_crossing_80_percent_is_a_soft_breach_and_the_agent_keeps_working(budgeted):
    spend(budgeted, 500)
    spend(budgeted, 300)
    spend(budgeted, 100)  # already past the line: said once

    budgeted.refresh_from_db()
    assert budgeted.status == "active"
    assert breaches() == [("agent", "soft")]
    [event] = Event.objects.filter(type="budget.breached")
    assert event.payload["data"]["budget"] == {
        "scope": "agent",
        "id": budgeted.pk,
        "level": "soft",
        "budgetCents": 1000,
        "spentCents": 800,
    }


def test_crossing_100_percent_stops_the_agent_at_once(budgeted):
    other_run = live_run(budgeted)
    key = key_of(budgeted)

    spend(budgeted, 1200)

    budgeted.refresh_from_db()
    assert (budgeted.status, budgeted.pause_reason) == ("paused", "budget")
    assert breaches() == [("agent", "soft"), ("agent", "hard")]
    # Its other live run is told to stop on its next heartbeat.
    heartbeat = client_for(key, run_id=other_run.pk).post(
        f"/api/heartbeat-runs/{other_run.pk}/heartbeat", {}, format="json"
    )
    assert heartbeat.status_code == 200, heartbeat.json()
    assert heartbeat.json()["cancelRequested"] is True
    # One approval for the board, naming what was spent.
    [approval] = overrides()
    assert (approval.status, approval.requested_by_agent_id) == ("pending", budgeted.pk)
    assert approval.payload | {"month": "?"} == {
        "scope": "agent",
        "id": budgeted.pk,
        "level": "hard",
        "budgetCents": 1000,
        "spentCents": 1200,
        "month": "?",
    }
    paused = ActivityEvent.objects.get(action="agent.paused")
    assert (paused.actor_type, paused.details["pauseReason"]) == ("system", "budget")


def test_a_run_the_stop_could_not_cancel_is_stopped_by_its_next_heartbeat(budgeted):
    """A run whose own request held it while the stop ran was skipped, not waited for."""
    spend(budgeted, 1000)
    missed = live_run(budgeted)  # as if its heartbeat had held the row

    heartbeat = client_for(key_of(budgeted), run_id=missed.pk).post(
        f"/api/heartbeat-runs/{missed.pk}/heartbeat", {}, format="json"
    )

    assert heartbeat.status_code == 200, heartbeat.json()
    assert heartbeat.json()["cancelRequested"] is True
    missed.refresh_from_db()
    assert (missed.status, missed.exit_reason) == ("cancelled", "budget_exhausted")


def test_an_agent_its_budget_stopped_gets_409_on_checkout_and_wake(board, budgeted, company):
    issue = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=budgeted)
    spend(budgeted, 1000)
    run = live_run(budgeted)
    agent = client_for(key_of(budgeted), run_id=run.pk)

    checkout = agent.post(
        f"/api/issues/{issue.pk}/checkout", {"expectedStatuses": ["todo"]}, format="json"
    )
    woken_by_board = board.post(f"/api/agents/{budgeted.pk}/wakeup", {}, format="json")

    for response in (checkout, woken_by_board):
        assert response.status_code == 409, response.json()
        assert (response.json()["error"], response.json()["code"]) == (
            "Budget exhausted",
            "budget_exhausted",
        )
    issue.refresh_from_db()
    assert (issue.status, issue.checkout_run_id) == ("todo", None)


def test_approving_the_override_lets_the_agent_work_again(board, budgeted, company):
    spend(budgeted, 1500)
    [approval] = overrides()

    response = board.post(f"/api/approvals/{approval.pk}/approve", {}, format="json")

    assert response.status_code == 200, response.json()
    budgeted.refresh_from_db()
    assert (budgeted.status, budgeted.pause_reason) == ("active", "")
    # Past the line already: more spend this month does not stop it again.
    spend(budgeted, 100)
    budgeted.refresh_from_db()
    assert budgeted.status == "active"
    assert overrides().count() == 1


def test_rejecting_the_override_keeps_the_agent_stopped(board, budgeted):
    spend(budgeted, 1500)
    [approval] = overrides()

    board.post(f"/api/approvals/{approval.pk}/reject", {}, format="json")

    budgeted.refresh_from_db()
    assert (budgeted.status, budgeted.pause_reason) == ("paused", "budget")


def test_raising_the_budget_resumes_the_agent_and_withdraws_the_override(board, budgeted):
    spend(budgeted, 1000)

    response = board.patch(
        f"/api/agents/{budgeted.pk}", {"budgetMonthlyCents": 5000}, format="json"
    )

    assert response.status_code == 200, response.json()
    budgeted.refresh_from_db()
    assert (budgeted.status, budgeted.budget_monthly_cents) == ("active", 5000)
    assert list(overrides().values_list("status", flat=True)) == ["cancelled"]


def test_the_override_lifts_the_budgets_stop_not_the_boards_pause(board, agent):
    agent.pause()
    agent.save()
    factories.CostEventFactory(agent=agent, cost_cents=2000)

    lowered = board.patch(f"/api/agents/{agent.pk}", {"budgetMonthlyCents": 1000}, format="json")
    [approval] = overrides()  # lowered below this month's spend: stopped now
    board.post(f"/api/approvals/{approval.pk}/approve", {}, format="json")

    assert lowered.status_code == 200, lowered.json()
    agent.refresh_from_db()
    assert (agent.status, agent.pause_reason) == ("paused", "manual")


def test_only_this_months_costs_count(budgeted):
    last_month = timezone.now().replace(day=1) - timedelta(days=2)
    factories.CostEventFactory(agent=budgeted, cost_cents=5000, occurred_at=last_month)

    spend(budgeted, 100)

    budgeted.refresh_from_db()
    assert (budgeted.status, breaches()) == ("active", [])


def test_spent_monthly_cents_is_this_months_spend(board, budgeted):
    last_month = timezone.now().replace(day=1) - timedelta(days=2)
    factories.CostEventFactory(agent=budgeted, cost_cents=5000, occurred_at=last_month)
    spend(budgeted, 250)
    factories.CostEventFactory(agent=budgeted, cost_cents=Decimal("0.4"))

    body = board.get(f"/api/agents/{budgeted.pk}").json()

    assert (body["budgetMonthlyCents"], body["spentMonthlyCents"]) == (1000, 250)


def test_no_budget_never_stops(agent):
    spend(agent, 10_000_000)

    agent.refresh_from_db()
    assert (agent.status, breaches()) == ("active", [])


# -- the company's budget ----------------------------------------------------------------------


def test_a_company_over_budget_stops_all_its_agents(company, agent):
    company.budget_monthly_cents = 1000
    company.save()
    peer = factories.AgentFactory(company=company, name="Peer")
    idle = factories.AgentFactory(company=company, name="Idle", status="idle")
    peers_run = live_run(peer)

    spend(agent, 600)
    spend(peer, 600)

    stopped = Agent.objects.filter(company=company).values_list("status", "pause_reason")
    assert set(stopped) == {("paused", "budget")}
    assert breaches() == [("company", "soft"), ("company", "hard")]
    [approval] = overrides()
    assert (approval.payload["scope"], approval.payload["id"]) == ("company", company.pk)
    assert approval.requested_by_agent_id is None
    peers_run.refresh_from_db()
    assert (peers_run.status, peers_run.exit_reason) == ("cancelled", "budget_exhausted")
    assert idle.pk in {a.pk for a in Agent.objects.filter(pause_reason="budget")}


def test_approving_the_company_override_resumes_every_agent_it_stopped(board, company, agent):
    company.budget_monthly_cents = 1000
    company.save()
    peer = factories.AgentFactory(company=company, name="Peer")
    spend(agent, 1000)
    [approval] = overrides()

    board.post(f"/api/approvals/{approval.pk}/approve", {}, format="json")

    assert set(Agent.objects.values_list("pk", "status")) == {
        (agent.pk, "active"),
        (peer.pk, "active"),
    }


def test_another_companys_spend_is_not_this_ones(company, agent, other_agent):
    company.budget_monthly_cents = 1000
    company.save()

    spend(other_agent, 5000)

    agent.refresh_from_db()
    assert (agent.status, breaches()) == ("active", [])


# -- a task's budget -----------------------------------------------------------------------------


def test_a_task_over_its_budget_stops_the_run_holding_it(company, agent):
    holder = live_run(agent)
    issue = factories.IssueFactory(
        company=company,
        status=Status.IN_PROGRESS,
        assignee_agent=agent,
        checkout_run=holder,
        budget_usd=Decimal("1.00"),
    )

    spend(agent, 120, issue_id=issue.pk)

    holder.refresh_from_db()
    assert (holder.status, holder.exit_reason) == ("cancelled", "budget_exhausted")
    assert breaches() == [("task", "soft"), ("task", "hard")]
    agent.refresh_from_db()
    assert agent.status == "active"  # the agent may work on other tasks
    claim = client_for(key_of(agent)).post(
        f"/v1/companies/{company.pk}/issues/{issue.pk}/runs", {}, format="json"
    )
    assert claim.status_code == 409
    assert claim.json()["error"]["code"] == "budget_exhausted"


def test_a_cost_on_a_task_changes_its_etag(board, company, agent):
    issue = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    url = f"/v1/companies/{company.pk}/issues/{issue.pk}"
    before = board.get(url)

    spend(agent, 500, issue_id=issue.pk)
    after = board.get(url, HTTP_IF_NONE_MATCH=before["ETag"])

    assert after.status_code == 200
    assert after["ETag"] != before["ETag"]
    assert after.json()["data"]["budget"]["spent"] == {"usd": 5.0}


def test_a_cost_reported_for_last_month_does_not_count_against_this_months_budget(budgeted):
    last_month = timezone.now().replace(day=1) - timedelta(days=3)

    response = client_for(key_of(budgeted)).post(
        f"/api/companies/{budgeted.company_id}/cost-events",
        {
            "agentId": budgeted.pk,
            "provider": "anthropic",
            "model": "claude-sonnet-4",
            "costCents": 5000,
            "occurredAt": last_month.isoformat(),
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    budgeted.refresh_from_db()
    assert (budgeted.status, budgeted.spent_monthly_cents, breaches()) == ("active", 0, [])
    spend(budgeted, 1000)  # this month's line is still where it was
    budgeted.refresh_from_db()
    assert (budgeted.status, budgeted.pause_reason) == ("paused", "budget")


@pytest.mark.parametrize(
    ("usage", "field"),
    [
        ({"costUsd": 1e20}, "usage.costUsd"),
        ({"costCents": 10**14}, "usage.costCents"),
        ({"inputTokens": 10**25}, "usage.inputTokens"),
    ],
)
def test_a_finish_reporting_more_than_a_cost_can_hold_gets_400_and_the_run_stays_live(
    agent, usage, field
):
    run = live_run(agent)

    response = client_for(key_of(agent), run_id=run.pk).post(
        f"/api/heartbeat-runs/{run.pk}/finish",
        {"status": "succeeded", "usage": usage},
        format="json",
    )

    assert response.status_code == 400, response.json()
    assert response.json()["details"] == {field: ["Too large."]}
    run.refresh_from_db()
    assert (run.status, run.costs.count()) == ("running", 0)
