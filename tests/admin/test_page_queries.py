"""Every board page costs the same number of queries whether what it shows has 3 rows or 30
(issue 14): a document's revisions, an agent's open issues and runs, an approval's linked issues,
an endpoint's deliveries, a company's seats, the org chart's agents and its depth. The issue page
(its thread) has its count asserted beside it (test_issue_thread.py); these are the others.

Each scene builds one page's object with `rows` rows around it, twice (3, then 30) in the same
database; the two pages must cost the same. The choices a form offers (the company's goals, its
agents) grow with the scenes too, so a per-option query shows up here as well.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.admin.utils import quote
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from companies.models import ActivityEvent
from issues.models import ApprovalComment
from tests import factories
from tests.factories import live_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def change_url(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])


def document(company, agent, rows: int) -> str:
    issue = factories.IssueFactory(company=company)
    return change_url(
        factories.DocumentFactory(issue=issue, revisions=rows, revisions__author_agent=agent)
    )


def revision_diff(company, agent, rows: int) -> str:
    issue = factories.IssueFactory(company=company)
    made = factories.DocumentFactory(issue=issue, revisions=rows, revisions__author_agent=agent)
    return reverse(
        "admin:issues_issue_revision_diff", args=[quote(issue.pk), quote(made.latest_revision_id)]
    )


def agent_page(company, agent, rows: int) -> str:
    made = factories.AgentFactory(company=company, reports_to=agent)
    for _ in range(rows):
        issue = factories.IssueFactory(company=company, assignee_agent=made, status="todo")
        live_run(made, issue_id=issue.pk, wake_reason="issue_assigned")
    return change_url(made)


def approval(company, agent, rows: int) -> str:
    issues = [factories.IssueFactory(company=company) for _ in range(rows)]
    made = factories.ApprovalFactory(requested_by_agent=agent, issues=issues)
    for number in range(rows):
        ApprovalComment.objects.create(
            company=company, approval=made, author_agent=agent, body=f"Why {number}?"
        )
    return change_url(made)


def project(company, agent, rows: int) -> str:
    goals = [factories.GoalFactory(company=company, owner_agent=agent) for _ in range(rows)]
    made = factories.ProjectFactory(company=company, lead_agent=agent)
    made.goals.add(*goals)
    for _ in range(rows):
        factories.IssueFactory(company=company, project=made)
    return change_url(made)


def goal(company, agent, rows: int) -> str:
    made = factories.GoalFactory(company=company, owner_agent=agent)
    for _ in range(rows):
        factories.GoalFactory(company=company, parent=made, owner_agent=agent)
        factories.ProjectFactory(company=company).goals.add(made)
    return change_url(made)


def company_page(company, agent, rows: int) -> str:
    made = factories.CompanyFactory()
    for _ in range(rows):
        factories.MembershipFactory(company=made)
        factories.AgentFactory(company=made)
    return change_url(made)


def user_page(company, agent, rows: int) -> str:
    made = factories.UserFactory()
    for _ in range(rows):
        factories.MembershipFactory(user=made)
        factories.BoardTokenFactory(user=made)
    return change_url(made)


def run(company, agent, rows: int) -> str:
    made = live_run(agent, issue_id=factories.IssueFactory(company=company).pk)
    for _ in range(rows):
        factories.WakeupRequestFactory(run=made)
        factories.WakeDeliveryFactory(run=made)
    return change_url(made)


def webhook_endpoint(company, agent, rows: int) -> str:
    made = factories.WebhookEndpointFactory(company=company)
    for _ in range(rows):
        factories.WebhookDeliveryFactory(endpoint=made)
    return change_url(made)


def one_of(make: Callable) -> Callable:
    """The page of one row among `rows` of its kind (its form's choices grow with them)."""

    def scene(company, agent, rows: int) -> str:
        made = [make(company, agent) for _ in range(rows)]
        return change_url(made[-1])

    return scene


def activity(company, agent):
    issue = factories.IssueFactory(company=company)
    return ActivityEvent.objects.create(
        company=company,
        actor_type="agent",
        actor_id=agent.pk,
        action="issue.updated",
        entity_type="issue",
        entity_id=issue.pk,
        issue_id=issue.pk,
    )


def org_chart(company, agent, rows: int) -> str:
    """`rows` more agents, half of them a chain of command as deep, half reporting to the top."""
    boss = agent
    for number in range(rows):
        made = factories.AgentFactory(company=company, reports_to=boss)
        if number % 2 == 0:
            boss = made
    return reverse("admin:agents_agent_tree")


PAGES: dict[str, Callable] = {
    "document": document,
    "revision diff": revision_diff,
    "agent": agent_page,
    "approval": approval,
    "project": project,
    "goal": goal,
    "company": company_page,
    "user": user_page,
    "run": run,
    "webhook endpoint": webhook_endpoint,
    "org chart": org_chart,
    "label": one_of(lambda c, a: factories.LabelFactory(company=c)),
    "team": one_of(lambda c, a: factories.TeamFactory(company=c)),
    "group": one_of(lambda c, a: factories.GroupFactory()),
    "comment": one_of(
        lambda c, a: factories.CommentFactory(
            issue=factories.IssueFactory(company=c), author_agent=a, body="**bold** _it_"
        )
    ),
    "activity event": one_of(activity),
    "board token": one_of(
        lambda c, a: factories.BoardTokenFactory(user=factories.MembershipFactory(company=c).user)
    ),
    "agent API key": one_of(lambda c, a: factories.AgentApiKeyFactory(agent=a)),
    "wakeup request": one_of(lambda c, a: factories.WakeupRequestFactory(run__agent=a)),
    "wake delivery": one_of(lambda c, a: factories.WakeDeliveryFactory(run__agent=a)),
    "webhook delivery": one_of(
        lambda c, a: factories.WebhookDeliveryFactory(
            endpoint=factories.WebhookEndpointFactory(company=c)
        )
    ),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_a_page_costs_the_same_queries_for_3_rows_as_for_30(staff, company, agent, name):
    scene = PAGES[name]

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff.get(url).status_code == 200
        return len(captured)

    url = scene(company, agent, 3)
    staff.get(url)  # once to warm what is cached per process (content types, the session)
    few = queries(url)
    many = queries(scene(company, agent, 30))

    assert many == few
