"""The board's home page is the company's dashboard (issue 14, DESIGN §10, §11): what needs a
human now with links to the filtered lists, agents and issues by status, the charts, spend against
budget, the newest activity by name; only the companies the user is a member of."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from agents.models import Agent, HeartbeatRun, PauseReason
from companies.models import ActivityEvent
from issues.models import Approval, Status
from tests import factories

HOME = reverse("admin:index")
VIEWS = ["view_issue", "view_approval", "view_agent", "view_heartbeatrun", "view_activityevent"]


def member_of(*companies, username: str = "triager"):
    user = factories.UserFactory(username=username, is_staff=True)
    for company in companies:
        factories.MembershipFactory(user=user, company=company)
    user.user_permissions.add(*Permission.objects.filter(codename__in=VIEWS))
    return user


@pytest.fixture
def member(client, company):
    client.force_login(member_of(company))
    return client


def stale_lock(company, agent):
    """An in-progress issue locked by a run whose lease has expired."""
    run = factories.HeartbeatRunFactory(
        agent=agent,
        status=HeartbeatRun.Status.RUNNING,
        lease_expires_at=timezone.now() - timedelta(minutes=1),
    )
    return factories.IssueFactory(
        company=company, status=Status.IN_PROGRESS, assignee_agent=agent, checkout_run=run
    )


@pytest.fixture
def busy(company, agent):
    """Something in every "needs a human" tile: 1 pending approval (and a decided one), 2 blocked,
    1 in review, 1 stale lock, 1 agent paused by its budget (and one paused by hand)."""
    Approval.objects.create(company=company, type=Approval.Type.HIRE_AGENT)
    Approval.objects.create(
        company=company, type=Approval.Type.HIRE_AGENT, status=Approval.Status.APPROVED
    )
    factories.IssueFactory.create_batch(2, company=company, status=Status.BLOCKED)
    factories.IssueFactory(company=company, status=Status.IN_REVIEW, title="Check the copy")
    stale = stale_lock(company, agent)
    factories.AgentFactory(
        company=company, name="Spender", status=Agent.Status.PAUSED, pause_reason=PauseReason.BUDGET
    )
    factories.AgentFactory(
        company=company, name="Resting", status=Agent.Status.PAUSED, pause_reason="manual"
    )
    factories.HeartbeatRunFactory(agent=agent, status=HeartbeatRun.Status.RUNNING)  # live
    return stale


def tiles(response) -> dict[str, dict]:
    return {tile["label"]: tile for tile in response.context["dashboard"]["needs_human"]}


def test_home_shows_what_needs_a_human_with_links_to_the_filtered_lists(member, busy, company):
    response = member.get(HOME)

    assert response.status_code == 200
    assert {label: tile["count"] for label, tile in tiles(response).items()} == {
        "Pending approvals": 1,
        "Blocked issues": 2,
        "In review": 1,
        "Stale locks": 1,
        "Paused by budget": 1,
    }
    for label, tile in tiles(response).items():
        if tile["url"] is None:
            continue
        listed = member.get(tile["url"])  # each link opens the admin list, filtered to the count
        assert listed.status_code == 200, label
        assert listed.context["cl"].result_count == tile["count"], label
    # No list filters stale locks: the page names them, each linking to its issue's page.
    assert tiles(response)["Stale locks"]["named"] == [
        {"text": busy.identifier, "url": reverse("admin:issues_issue_change", args=[busy.pk])}
    ]
    assert busy.identifier in response.content.decode()


def test_agents_and_issues_by_status_and_live_runs(member, busy, company, agent):
    dashboard = member.get(HOME).context["dashboard"]

    agents = {row["status"]: row["count"] for row in dashboard["agents_by_status"]}
    assert agents == {**dict.fromkeys(Agent.Status.values, 0), "active": 1, "paused": 2}
    issues = {row["status"]: row["count"] for row in dashboard["issues_by_status"]}
    assert issues == {
        **dict.fromkeys(Status.values, 0),
        "blocked": 2,
        "in_review": 1,
        "in_progress": 1,
    }
    assert dashboard["live_runs"]["count"] == 1
    runs = member.get(dashboard["live_runs"]["url"])
    assert runs.status_code == 200
    assert runs.context["cl"].result_count == 1  # the expired lock holder is not live
    blocked = next(row for row in dashboard["issues_by_status"] if row["status"] == "blocked")
    assert member.get(blocked["url"]).context["cl"].result_count == 2


def test_spend_against_budget_per_agent_and_for_the_company(member, company, agent):
    company.budget_monthly_cents = 10_000
    company.save()
    agent.budget_monthly_cents = 2_000
    agent.save()
    factories.CostEventFactory(agent=agent, cost_cents=1_700)
    factories.CostEventFactory(  # last month: not this month's spend
        agent=agent, cost_cents=9_999, occurred_at=timezone.now() - timedelta(days=40)
    )
    idle = factories.AgentFactory(company=company, name="Idle")

    dashboard = member.get(HOME).context["dashboard"]

    assert dashboard["spend"]["month_spend_cents"] == 1_700
    assert dashboard["spend"]["utilization_percent"] == 17.0
    assert dashboard["spend"]["spent"] == "$17.00"
    rows = {row["name"]: row for row in dashboard["agent_spend"]}
    assert rows[agent.name]["spent_cents"] == 1_700
    assert rows[agent.name]["percent"] == 85.0
    assert rows[agent.name]["tone"] == "soft"  # past DESIGN §10's 80 % warning
    assert rows[idle.name]["tone"] == "none"  # no budget
    assert [row["name"] for row in dashboard["agent_spend"]] == [agent.name, idle.name]


def test_charts_count_issues_created_and_done_by_day_and_week(member, company):
    now = timezone.now()
    factories.IssueFactory(company=company, status=Status.DONE, completed_at=now)
    factories.IssueFactory(company=company, status=Status.TODO)
    factories.IssueFactory(
        company=company,
        status=Status.DONE,
        created_at=now - timedelta(days=9),
        completed_at=now - timedelta(days=8),
    )

    dashboard = member.get(HOME).context["dashboard"]

    today = dashboard["flow_chart"]["bars"][-1]
    assert (today["created"], today["done"]) == (2, 1)
    assert dashboard["flow_chart"]["created"] == 3
    assert dashboard["flow_chart"]["done"] == 2
    assert [bar["done"] for bar in dashboard["throughput"]["bars"]][-2:] == [1, 1]
    # Open at each day's end, walked back from today's one open (the todo, created today): none
    # yesterday; the older issue open only at the end of the day it was created.
    counts = [point["count"] for point in dashboard["open_chart"]["points"]]
    assert counts[-1] == 1 and counts[-2] == 0
    assert counts[-11:-8] == [0, 1, 0]
    html = member.get(HOME).content.decode()
    assert html.count('<svg viewBox="0 0 100 100"') == 3  # drawn by the server, no canvas
    assert "<canvas" not in html


def test_recent_activity_names_the_actor_and_links_the_issue(member, company, agent, board_user):
    issue = factories.IssueFactory(company=company, title="Fix the login")
    for actor_type, actor_id in (("agent", agent.pk), ("user", board_user.pk)):
        ActivityEvent.objects.create(
            company=company,
            actor_type=actor_type,
            actor_id=actor_id,
            action="issue.updated",
            entity_type="issue",
            entity_id=issue.pk,
            issue_id=issue.pk,
            details={"changes": {"status": {"from": "todo", "to": "in_review"}}},
        )

    response = member.get(HOME)

    rows = response.context["dashboard"]["recent_activity"]
    assert [(row["actor"], row["subject"], row["summary"]) for row in rows] == [
        (board_user.username, issue.identifier, "todo → in review"),
        (agent.name, issue.identifier, "todo → in review"),
    ]
    html = response.content.decode()
    assert reverse("admin:issues_issue_change", args=[issue.pk]) in html
    shown = re.sub(r'href="[^"]*"', "", html)  # ids belong in links, never in the text
    assert agent.pk not in shown and board_user.pk not in shown and issue.pk not in shown


def test_a_member_never_sees_another_companys_numbers(member, company, other_company, other_agent):
    factories.IssueFactory.create_batch(
        3, company=other_company, status=Status.BLOCKED, title="Globex secret plan"
    )
    Approval.objects.create(company=other_company, type=Approval.Type.HIRE_AGENT)
    factories.CostEventFactory(agent=other_agent, cost_cents=5_000)
    ActivityEvent.objects.create(
        company=other_company,
        actor_type="agent",
        actor_id=other_agent.pk,
        action="issue.created",
        entity_type="issue",
        entity_id="iss_x",
    )

    response = member.get(HOME)

    html = response.content.decode()
    assert response.context["companies"] == [company]
    assert "Globex" not in html and other_agent.name not in html
    assert set(tile["count"] for tile in tiles(response).values()) == {0}
    assert response.context["dashboard"]["spend"]["month_spend_cents"] == 0
    assert response.context["dashboard"]["recent_activity"] == []
    # Asking for it by id is a 404, exactly like a company that does not exist.
    assert member.get(HOME, {"company": other_company.pk}).status_code == 404
    assert member.get(HOME, {"company": "cmp_01JUNK"}).status_code == 404


def test_the_company_picker_switches_between_the_users_companies(client, company, other_company):
    factories.IssueFactory(company=other_company, status=Status.BLOCKED, title="Globex work")
    client.force_login(member_of(company, other_company))

    first = client.get(HOME)
    picked = client.get(HOME, {"company": other_company.pk})

    assert first.context["dashboard"]["company"] == company  # "Acme Robotics" before "Globex"
    assert tiles(first)["Blocked issues"]["count"] == 0
    assert f'<option value="{other_company.pk}"' in first.content.decode()
    assert picked.context["dashboard"]["company"] == other_company
    assert tiles(picked)["Blocked issues"]["count"] == 1
    assert f"company__exact={other_company.pk}" in tiles(picked)["Blocked issues"]["url"]


def test_a_superuser_sees_every_company(client, admin_user, company, other_company):
    client.force_login(admin_user)

    response = client.get(HOME, {"company": other_company.pk})

    assert response.context["companies"] == [company, other_company]
    assert response.context["dashboard"]["company"] == other_company


def test_a_user_with_no_company_gets_an_empty_state(client, company):
    client.force_login(factories.UserFactory(username="newcomer", is_staff=True))

    response = client.get(HOME)

    assert response.status_code == 200
    assert response.context["dashboard"] is None
    assert "You are not on a company" in response.content.decode()


def test_a_link_shows_only_to_a_viewer_who_may_open_its_page(client, busy, company, agent):
    """Counts for everyone; a link only where the viewer may view the list or the object."""
    ActivityEvent.objects.create(
        company=company,
        actor_type="agent",
        actor_id=agent.pk,
        action="agent.updated",
        entity_type="agent",
        entity_id=agent.pk,
    )
    user = member_of(company)
    user.user_permissions.remove(
        *Permission.objects.filter(codename__in=["view_approval", "view_agent"])
    )
    client.force_login(user)

    response = client.get(HOME)
    html = response.content.decode()

    assert tiles(response)["Pending approvals"]["count"] == 1
    assert tiles(response)["Pending approvals"]["url"] is None
    assert tiles(response)["Paused by budget"]["url"] is None
    assert reverse("admin:issues_approval_changelist") not in html
    assert reverse("admin:agents_agent_changelist") not in html
    assert reverse("admin:agents_agent_change", args=[agent.pk]) not in html
    assert "All agents" not in html
    assert re.search(r'<span class="pc-name">\s*Spender\s*</span>', html)  # named, not linked
    # What the user may view stays linked: the issue lists and the stale lock's issue.
    assert tiles(response)["Blocked issues"]["url"].startswith(
        reverse("admin:issues_issue_changelist")
    )
    assert reverse("admin:issues_issue_change", args=[busy.pk]) in html


def world_of(company, agent, user, n: int) -> None:
    """`n` issues in every lifecycle corner, `n` agents with spend, `n` activity rows by agents
    and by a user about issues and agents."""
    now = timezone.now()
    agents = factories.AgentFactory.create_batch(n, company=company, budget_monthly_cents=1_000)
    for i in range(n):
        status = [Status.BLOCKED, Status.IN_REVIEW, Status.DONE, Status.TODO][i % 4]
        issue = factories.IssueFactory(
            company=company,
            status=status,
            created_at=now - timedelta(days=i % 20),
            completed_at=now if status == Status.DONE else None,
        )
        factories.CostEventFactory(agent=agents[i], issue=issue, cost_cents=100 + i)
        Approval.objects.create(company=company, type=Approval.Type.HIRE_AGENT)
        for actor_type, actor_id in (("agent", agents[i].pk), ("user", user.pk)):
            ActivityEvent.objects.create(
                company=company,
                actor_type=actor_type,
                actor_id=actor_id,
                action="issue.updated",
                entity_type="issue",
                entity_id=issue.pk,
                issue_id=issue.pk,
            )
    stale_lock(company, agent)
    factories.HeartbeatRunFactory(agent=agent)


@pytest.mark.parametrize("n", [3, 30])
def test_the_page_costs_the_same_queries_whatever_the_rows(
    client, company, agent, django_assert_num_queries, n
):
    user = member_of(company)
    world_of(company, agent, user, n)
    client.force_login(user)

    # The request's savepoint and its release; session, user, the user's and its groups'
    # permissions (the sidebar); memberships, companies; the API dashboard's seven (month spend,
    # agents by status, issues by status, stale locks, live runs, pending approvals, the newest
    # activity); stale locks by name; paused by budget; issues created and closed per day; spend
    # per agent; the names of the activity's agents, users and issues.
    with django_assert_num_queries(23):
        response = client.get(HOME)

    assert response.status_code == 200
    assert response.context["dashboard"]["issues_total"] == n + 1
