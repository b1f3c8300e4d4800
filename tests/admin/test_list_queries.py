"""Every board list costs the same number of queries for 3 rows as for 30 (issue 14): names,
badges and links come in the page's own queries, never one per row. The lists with pages of
their own have their count asserted beside them (issues, runs, agents, kanban, the dashboard, the
issue thread); these are the others."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from companies.models import ActivityEvent
from issues.models import Approval
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def approval(company, agent) -> None:
    made = Approval.objects.create(
        company=company,
        type="hire_agent",
        requested_by_agent=agent,
        payload={"name": "Scout", "role": "qa"},
    )
    made.issues.add(factories.IssueFactory(company=company))


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
}


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
