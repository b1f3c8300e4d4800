"""`GET /api/companies/{id}/dashboard` (DESIGN §10): where the company stands, for any member
of it (agents included): agents and issues by status, stale locks, live runs, this month's spend
against the budget, pending approvals and the ten newest activity rows (as the activity list
writes them), in a fixed number of queries, with an `ETag` that answers 304."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent, HeartbeatRun
from companies.models import ActivityEvent
from issues.models import Approval, Status
from tests import factories
from tests.wire import wire

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "Not found", "code": "not_found"}
NO_AGENTS = dict.fromkeys(Agent.Status.values, 0)
NO_ISSUES = dict.fromkeys(Status.values, 0)


def run(agent: Agent, status: str, lease_in_minutes: int = 5) -> HeartbeatRun:
    return factories.HeartbeatRunFactory(
        agent=agent,
        status=status,
        lease_expires_at=timezone.now() + timedelta(minutes=lease_in_minutes),
    )


def approval(company, status: str = "pending") -> Approval:
    row = Approval.objects.create(company=company, type=Approval.Type.REQUEST_BOARD_APPROVAL)
    if status == "rejected":
        row.reject()
        row.save()
    return row


def activity(company, n: int, minutes_ago: int) -> ActivityEvent:
    return ActivityEvent.objects.create(
        company=company,
        actor_type="system",
        actor_id="system",
        action=f"test.step{n}",
        entity_type="company",
        entity_id=company.pk,
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


@pytest.fixture
def busy(company, agent, other_company, other_agent):
    """A company at work, and another company whose rows must not count."""
    company.budget_monthly_cents = 6000
    company.save()
    paused = factories.AgentFactory(company=company, name="Resting")
    paused.pause()
    paused.save()
    factories.AgentFactory(company=company, name="Gone", status=Agent.Status.TERMINATED)

    live = run(agent, "running")
    run(agent, "queued")
    dead = run(agent, "running", lease_in_minutes=-1)  # its lease expired: not live
    run(agent, "succeeded")
    run(other_agent, "running")

    for status in ("backlog", "backlog", "todo", "done", "cancelled"):
        factories.IssueFactory(company=company, status=status)
    factories.IssueFactory(company=company, status="todo", hidden_at=timezone.now())
    for holder in (live, dead):  # one lock held by a live run, one stale
        factories.IssueFactory(
            company=company, status="in_progress", assignee_agent=agent, checkout_run=holder
        )
    factories.IssueFactory(company=other_company, status="in_progress", assignee_agent=other_agent)

    factories.CostEventFactory(agent=agent, cost_cents=1000)
    factories.CostEventFactory(agent=paused, cost_cents="500.4")
    factories.CostEventFactory(
        agent=agent, cost_cents=9000, occurred_at=timezone.now() - timedelta(days=40)
    )
    factories.CostEventFactory(agent=other_agent, cost_cents=777)

    approval(company)
    approval(company)
    approval(company, "rejected")
    approval(other_company)

    for n in range(12):
        activity(company, n, minutes_ago=100 - n)  # step11 is the newest
    activity(other_company, 99, minutes_ago=0)
    return company


def test_the_dashboard_counts_what_the_company_has(board, busy, django_assert_num_queries):
    # inside the request's savepoint (2): the board token, the caller's seats, the company;
    # agents by status, issues by status, stale locks, live runs, this month's spend, pending
    # approvals, the ten newest activity rows
    with django_assert_num_queries(12):
        response = board.get(f"/api/companies/{busy.pk}/dashboard")

    assert response.status_code == 200, response.json()
    body = response.json()
    activity_list = board.get(f"/api/companies/{busy.pk}/activity", {"limit": 10}).json()
    assert body == {
        "companyId": wire(busy),
        "agents": {**NO_AGENTS, "active": 1, "paused": 1, "terminated": 1},
        "issues": {
            **NO_ISSUES,
            "backlog": 2,
            "todo": 1,
            "in_progress": 2,
            "done": 1,
            "cancelled": 1,
        },
        "staleLocks": 1,
        "liveRuns": 2,
        "spend": {"monthSpendCents": 1500, "monthBudgetCents": 6000, "utilizationPercent": 25.01},
        "pendingApprovals": 2,
        "recentActivity": activity_list,
    }
    assert [row["action"] for row in body["recentActivity"]] == [
        f"test.step{n}" for n in range(11, 1, -1)
    ]


def test_the_query_count_does_not_grow_with_the_company(
    board, busy, agent, django_assert_num_queries
):
    for _ in range(5):
        factories.IssueFactory(company=busy, status="blocked")
        run(agent, "running")
        approval(busy)

    with django_assert_num_queries(12):
        response = board.get(f"/api/companies/{busy.pk}/dashboard")

    assert (response.json()["issues"]["blocked"], response.json()["liveRuns"]) == (5, 7)


def test_an_empty_company_has_zeros_and_no_utilization_without_a_budget(board, company):
    response = board.get(f"/api/companies/{company.pk}/dashboard")

    assert response.status_code == 200
    assert response.json() == {
        "companyId": wire(company),
        "agents": NO_AGENTS,
        "issues": NO_ISSUES,
        "staleLocks": 0,
        "liveRuns": 0,
        "spend": {"monthSpendCents": 0, "monthBudgetCents": 0, "utilizationPercent": 0.0},
        "pendingApprovals": 0,
        "recentActivity": [],
    }


def test_an_agent_of_the_company_reads_it(agent_client, busy):
    response = agent_client.get(f"/api/companies/{busy.pk}/dashboard")

    assert (response.status_code, response.json()["pendingApprovals"]) == (200, 2)


def test_the_dashboard_answers_304_to_its_own_etag(board, busy):
    first = board.get(f"/api/companies/{busy.pk}/dashboard")

    again = board.get(f"/api/companies/{busy.pk}/dashboard", HTTP_IF_NONE_MATCH=first["ETag"])

    assert (again.status_code, again.content, again["ETag"]) == (304, b"", first["ETag"])


def test_a_change_gives_the_dashboard_a_new_etag(board, busy):
    first = board.get(f"/api/companies/{busy.pk}/dashboard")
    approval(busy)

    again = board.get(f"/api/companies/{busy.pk}/dashboard", HTTP_IF_NONE_MATCH=first["ETag"])

    assert (again.status_code, again.json()["pendingApprovals"]) == (200, 3)
    assert again["ETag"] != first["ETag"]


@pytest.mark.parametrize("caller", ["other_board", "other_client"])
def test_another_companys_dashboard_is_404(request, busy, caller):
    response = request.getfixturevalue(caller).get(f"/api/companies/{busy.pk}/dashboard")

    assert (response.status_code, response.json()) == (404, NOT_FOUND)


@pytest.mark.parametrize("ref", ["nothing-here", "cmp_0000000000000000000000000", "ACM"])
def test_a_bad_company_id_is_404(board, ref):
    response = board.get(f"/api/companies/{ref}/dashboard")

    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_anonymous_is_401(anon, company):
    response = anon.get(f"/api/companies/{company.pk}/dashboard")

    assert response.status_code == 401
