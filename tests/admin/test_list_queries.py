"""Every board list costs the same number of queries for 3 rows as for 30 (issue 14): names,
badges and links come in the page's own queries, never one per row. The lists with pages of
their own have their count asserted beside them (issues, runs, agents, kanban, the dashboard, the
issue thread); these are the others. The object pages are in test_page_queries.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from companies.models import ActivityEvent
from tests import factories
from tests.factories import live_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def approval(company, agent) -> None:
    factories.ApprovalFactory(
        requested_by_agent=agent, issues=[factories.IssueFactory(company=company)]
    )


def activity(company, agent) -> None:
    issue = factories.IssueFactory(company=company)
    ActivityEvent.objects.create(
        company=company,
        actor_type="agent",
        actor_id=agent.pk,
        action="issue.updated",
        entity_type="issue",
        entity_id=issue.pk,
        issue_id=issue.pk,
    )


def comment(company, agent) -> None:
    factories.CommentFactory(issue=factories.IssueFactory(company=company), author_agent=agent)


def webhook(company, agent) -> None:
    factories.WebhookDeliveryFactory(endpoint=factories.WebhookEndpointFactory(company=company))


def user(company, agent) -> None:
    factories.MembershipFactory(company=company)


def board_token(company, agent) -> None:
    factories.BoardTokenFactory(user=factories.MembershipFactory(company=company).user)


def run(company, agent) -> None:
    factories.WakeDeliveryFactory(run=factories.WakeupRequestFactory(run__agent=agent).run)


def document(company, agent) -> None:
    factories.DocumentFactory(issue=factories.IssueFactory(company=company), revisions=2)


def managed_agent(company, agent) -> None:
    made = factories.AgentFactory(company=company, reports_to=agent)
    factories.IssueFactory(company=company, assignee_agent=made, status="todo")
    live_run(made)


LISTS: dict[str, tuple[str, Callable]] = {
    "approvals": ("admin:issues_approval_changelist", approval),
    "activity": ("admin:companies_activityevent_changelist", activity),
    "comments": ("admin:issues_comment_changelist", comment),
    "webhook endpoints": ("admin:agents_webhookendpoint_changelist", webhook),
    "webhook deliveries": ("admin:agents_webhookdelivery_changelist", webhook),
    "projects": (
        "admin:issues_project_changelist",
        lambda c, a: factories.ProjectFactory(company=c),
    ),
    "teams": ("admin:agents_team_changelist", lambda c, a: factories.TeamFactory(company=c)),
    "goals": (
        "admin:issues_goal_changelist",
        lambda c, a: factories.GoalFactory(
            company=c, parent=factories.GoalFactory(company=c), owner_agent=a
        ),
    ),
    "labels": ("admin:issues_label_changelist", lambda c, a: factories.LabelFactory(company=c)),
    "documents": ("admin:issues_document_changelist", document),
    "users": ("admin:companies_user_changelist", user),
    "companies": ("admin:companies_company_changelist", lambda c, a: factories.CompanyFactory()),
    "board tokens": ("admin:companies_boardtoken_changelist", board_token),
    "agent API keys": (
        "admin:agents_agentapikey_changelist",
        lambda c, a: factories.AgentApiKeyFactory(agent=a),
    ),
    "agents": ("admin:agents_agent_changelist", managed_agent),
    "groups": ("admin:auth_group_changelist", lambda c, a: factories.GroupFactory()),
    "wakeup requests": ("admin:agents_wakeuprequest_changelist", run),
    "wake deliveries": ("admin:agents_wakedelivery_changelist", run),
}


# Another hand is on agents/admin.py: the N+1s found there are marked until it is fixed.
@pytest.mark.parametrize("name", list(LISTS))
def test_a_list_costs_the_same_queries_for_3_rows_as_for_30(staff, company, agent, name):
    url, make = LISTS[name]

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff.get(reverse(url)).status_code == 200
        return len(captured)

    for _ in range(3):
        make(company, agent)
    few = queries()
    for _ in range(27):
        make(company, agent)

    assert queries() == few
