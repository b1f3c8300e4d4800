"""Issues never point across tenants, whoever calls the service (admin, commands, APIs).

The HTTP API's scoped fields refuse foreign ids before the service runs; this pins the
service's own guard, which is what every other caller relies on.
"""

from __future__ import annotations

import pytest

from companies.authentication import board_actor
from issues import services
from issues.models import Issue
from paperclip.errors import ValidationFailed
from tests import factories


def test_an_issue_cannot_be_assigned_to_another_companys_agent(company, board_user, other_agent):
    issue = factories.IssueFactory(company=company, title="Ours")

    with pytest.raises(ValidationFailed) as refused:
        services.issue_update(
            actor=board_actor(board_user), issue=issue, changes={"assignee_agent": other_agent}
        )

    assert refused.value.details == {"assigneeAgent": ["Must belong to the issue's company."]}
    assert Issue.objects.get(pk=issue.pk).assignee_agent_id is None


def test_an_issue_cannot_take_another_companys_labels(company, board_user, other_company):
    foreign = factories.LabelFactory(company=other_company)

    with pytest.raises(ValidationFailed):
        services.issue_create(
            actor=board_actor(board_user),
            company=company,
            data={"title": "Ours", "labels": [foreign]},
        )

    assert not Issue.objects.filter(company=company).exists()


def test_an_issue_cannot_be_assigned_to_a_user_outside_the_company(company, board_user):
    outsider = factories.UserFactory(username="outsider")

    with pytest.raises(ValidationFailed) as refused:
        services.issue_create(
            actor=board_actor(board_user),
            company=company,
            data={"title": "Ours", "assignee_user": outsider},
        )

    assert refused.value.details == {"assigneeUserId": ["Must be a member of the issue's company."]}


def test_an_approval_cannot_link_another_companys_issue(company, board_user, other_company):
    foreign = factories.IssueFactory(company=other_company)
    actor = board_actor(board_user)

    with pytest.raises(ValidationFailed) as at_creation:
        services.approval_create(
            actor=actor, company=company, type="approve_ceo_strategy", payload={}, issues=[foreign]
        )
    approval = services.approval_create(
        actor=actor, company=company, type="approve_ceo_strategy", payload={}, issues=[]
    )
    with pytest.raises(ValidationFailed) as by_link:
        services.approval_link_issue(actor=actor, approval=approval, issue=foreign)

    assert at_creation.value.details == {"issueIds": ["Must belong to the issue's company."]}
    assert by_link.value.details == {"issueId": ["Must belong to the issue's company."]}
    assert not approval.issues.exists()


@pytest.mark.django_db
def test_an_issues_runs_list_shows_no_run_of_another_company(board, company, other_agent):
    issue = factories.IssueFactory(company=company)
    factories.HeartbeatRunFactory(agent=other_agent, issue_id=issue.pk)

    response = board.get(f"/api/issues/{issue.pk}/runs")

    assert response.status_code == 200
    assert response.json() == []
