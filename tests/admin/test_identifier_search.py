"""Searching an issue identifier (`ACM-3`, any case): the issue list opens that issue's page
(not ACM-30…ACM-39, which contain it), and the activity log and the runs find the rows about it."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.urls import reverse

from agents.models import CHECKED_OUT
from companies.models import ActivityEvent
from issues.models import Issue, Priority
from paperclip.ids import as_uuid
from tests import factories
from tests.admin import buttons

ISSUES = reverse("admin:issues_issue_changelist")
ACTIVITY = reverse("admin:companies_activityevent_changelist")
RUNS = reverse("admin:agents_heartbeatrun_changelist")


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def acm_3(company) -> Issue:
    """ACM-3, least urgent and oldest, among ACM-30…ACM-39 (all of which contain "ACM-3")."""
    issue = factories.IssueFactory(company=company, number=3, priority=Priority.LOW)
    for number in range(30, 40):
        factories.IssueFactory(company=company, number=number, priority=Priority.HIGH)
    return issue


def logged(issue: Issue, action: str = "issue.updated", **fields) -> ActivityEvent:
    return ActivityEvent.objects.create(
        company=issue.company,
        actor_type="user",
        actor_id="usr_1",
        action=action,
        entity_type="issue",
        entity_id=issue.pk,
        issue_id=issue.pk,
        **fields,
    )


def rows_in_page_order(response) -> list[str]:
    """The identifiers of the issue rows, in the order the page shows them."""
    return [issue.identifier for issue in response.context["cl"].result_list]


def test_an_exact_identifier_opens_that_issues_page(staff, acm_3):
    response = staff.get(ISSUES, {"q": "acm-3"})

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:issues_issue_change", args=[quote(acm_3.pk)])
    # its page, transition buttons included
    assert set(buttons(staff.get(response["Location"]))) == {"to_todo", "block", "cancel"}


def test_an_identifier_naming_no_issue_searches_as_text(staff, acm_3):
    response = staff.get(ISSUES, {"q": "acm-4"})

    assert response.status_code == 200
    assert response.context["cl"].result_count == 0


def test_another_companys_identifier_opens_nothing(client, board_user, other_company):
    board_user.user_permissions.add(Permission.objects.get(codename="view_issue"))
    theirs = factories.IssueFactory(company=other_company)
    client.force_login(board_user)

    response = client.get(ISSUES, {"q": theirs.identifier})

    assert response.status_code == 200
    assert response.context["cl"].result_count == 0


def test_a_search_that_is_no_identifier_keeps_the_usual_order(staff, acm_3):
    response = staff.get(ISSUES, {"q": "Issue"})

    assert rows_in_page_order(response)[-1] == "ACM-3"  # least urgent, last


def test_activity_search_finds_an_issues_rows_by_its_identifier(staff, company, acm_3):
    ours = [logged(acm_3, "issue.created"), logged(acm_3, "issue.updated")]
    logged(Issue.objects.get(identifier="ACM-30"))

    response = staff.get(ACTIVITY, {"q": "acm-3"})

    assert response.status_code == 200
    assert set(response.context["cl"].result_list) == set(ours)


def test_run_search_finds_the_runs_woken_for_or_holding_an_issue(staff, agent, acm_3):
    woken = factories.HeartbeatRunFactory(agent=agent, issue_id=acm_3.pk)
    holder = factories.HeartbeatRunFactory(agent=agent)  # woken for something else
    logged(acm_3, CHECKED_OUT, run_id=holder.pk)
    factories.HeartbeatRunFactory(agent=agent, issue_id=Issue.objects.get(identifier="ACM-30").pk)

    response = staff.get(RUNS, {"q": "ACM-3"})

    assert response.status_code == 200
    assert set(response.context["cl"].result_list) == {woken, holder}


def test_an_identifier_of_another_company_finds_nothing(client, board_user, other_company):
    board_user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_activityevent", "view_heartbeatrun"])
    )
    client.force_login(board_user)
    theirs = factories.IssueFactory(company=other_company)  # GLO-1
    logged(theirs)
    factories.HeartbeatRunFactory(
        agent=factories.AgentFactory(company=other_company), issue_id=theirs.pk
    )

    for changelist in (ACTIVITY, RUNS):
        response = client.get(changelist, {"q": "GLO-1"})
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == []


def test_a_uuid_pasted_from_a_paperclip_client_finds_the_issue_and_its_rows(staff, acm_3):
    logged(acm_3)
    run = factories.HeartbeatRunFactory(agent=factories.AgentFactory(company=acm_3.company))
    uuid = as_uuid(acm_3.pk).upper()  # as some clients print it

    issues = staff.get(ISSUES, {"q": uuid})
    activity = staff.get(ACTIVITY, {"q": f" {uuid} "})
    runs = staff.get(RUNS, {"q": as_uuid(run.pk)})

    assert rows_in_page_order(issues) == ["ACM-3"]
    assert [row.issue_id for row in activity.context["cl"].result_list] == [acm_3.pk]
    assert [row.pk for row in runs.context["cl"].result_list] == [run.pk]
