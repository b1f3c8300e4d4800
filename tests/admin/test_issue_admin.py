from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from companies.models import ActivityEvent
from issues.models import Comment, Issue, Priority, Status
from tests import factories
from tests.admin import buttons, form_data, messages_of, press

CHANGELIST = reverse("admin:issues_issue_changelist")
ADD = reverse("admin:issues_issue_add")


def change_url(issue: Issue) -> str:
    return reverse("admin:issues_issue_change", args=[issue.pk])


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def test_changelist_renders_with_every_filter_applied(staff, company, agent):
    project = factories.ProjectFactory(company=company)
    label = factories.LabelFactory(company=company)
    wanted = factories.IssueFactory(
        company=company,
        status=Status.TODO,
        priority=Priority.HIGH,
        assignee_agent=agent,
        project=project,
    )
    wanted.labels.add(label)
    factories.IssueFactory(company=company, status=Status.TODO, priority=Priority.HIGH)

    response = staff.get(
        CHANGELIST,
        {
            "status__exact": "todo",
            "priority__exact": Priority.HIGH,
            "assignee_agent__id__exact": agent.pk,
            "project__id__exact": project.pk,
            "labels__id__exact": label.pk,
        },
    )

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [wanted]
    assert agent.name in response.content.decode()  # the assignee column


def test_change_page_shows_the_transitions_allowed_from_the_current_status(staff, company):
    issue = factories.IssueFactory(company=company)  # backlog, unassigned

    response = staff.get(change_url(issue))

    assert response.status_code == 200
    assert set(buttons(response)) == {"to_todo", "block", "cancel"}


def test_transition_button_moves_the_status_through_the_service(staff, company, admin_user):
    issue = factories.IssueFactory(company=company)

    response = press(staff, change_url(issue), "to_todo")

    assert response.status_code == 200
    assert "Move to todo: done." in messages_of(response)
    issue.refresh_from_db()
    assert (issue.status, issue.version) == (Status.TODO, 2)
    event = ActivityEvent.objects.get(action="issue.updated")
    assert (event.actor_type, event.actor_id, event.issue_id) == ("user", admin_user.pk, issue.pk)
    assert event.details == {"changes": {"status": {"from": "backlog", "to": "todo"}}}


def test_disallowed_transition_shows_the_error_and_changes_nothing(staff, company):
    issue = factories.IssueFactory(company=company)  # backlog: `complete` is not offered

    response = press(staff, change_url(issue), "complete")

    assert response.status_code == 200
    assert messages_of(response) == [
        "Invalid state transition: from backlog to done (allowed: todo, blocked, cancelled)"
    ]
    issue.refresh_from_db()
    assert (issue.status, issue.version, issue.completed_at) == (Status.BACKLOG, 1, None)
    assert not ActivityEvent.objects.exists()


@pytest.mark.parametrize("name", ["save", "check_out"])  # not a transition; agents' only
def test_a_name_that_is_no_button_is_refused(staff, company, agent, name):
    issue = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)

    response = press(staff, change_url(issue), name)

    assert messages_of(response) == [f"Unknown transition '{name}'."]
    issue.refresh_from_db()
    assert (issue.status, issue.version) == (Status.TODO, 1)


def test_reopen_button_reopens_a_finished_issue(staff, company, agent):
    issue = factories.IssueFactory(company=company, status=Status.DONE, assignee_agent=agent)

    response = press(staff, change_url(issue), "reopen")

    assert "Reopen: done." in messages_of(response)
    issue.refresh_from_db()
    assert issue.status == Status.TODO
    event = ActivityEvent.objects.get(action="issue.reopened")
    assert event.details == {"reopenedFrom": "done", "status": "todo"}


def test_edits_and_a_comment_go_through_the_service_in_one_update(staff, company, admin_user):
    label = factories.LabelFactory(company=company)
    issue = factories.IssueFactory(company=company, title="Old")

    data = form_data(staff.get(change_url(issue)))
    data |= {"title": "New", "labels": [label.pk], "new_comment": "Looks good"}
    response = staff.post(change_url(issue), data)

    assert response.status_code == 302
    issue.refresh_from_db()
    assert (issue.title, list(issue.labels.all()), issue.version) == ("New", [label], 2)
    updated = ActivityEvent.objects.get(action="issue.updated")
    assert updated.details["changes"] == {
        "title": {"from": "Old", "to": "New"},
        "labelIds": {"from": [], "to": [label.pk]},
    }
    comment = Comment.objects.get(issue=issue)
    assert (comment.body, comment.author_user) == ("Looks good", admin_user)
    assert ActivityEvent.objects.filter(action="issue.comment_added").count() == 1


def test_a_refused_edit_is_shown_and_rolled_back(staff, company, agent):
    issue = factories.IssueFactory(
        company=company, title="Old", status=Status.IN_PROGRESS, assignee_agent=agent
    )

    data = form_data(staff.get(change_url(issue)))
    data |= {"title": "Renamed", "assignee_agent": ""}  # in_progress needs an assignee
    response = staff.post(change_url(issue), data, follow=True)

    assert messages_of(response) == ["An in_progress issue needs an assignee"]
    issue.refresh_from_db()
    assert (issue.title, issue.assignee_agent, issue.version) == ("Old", agent, 1)
    assert not ActivityEvent.objects.exists()


def test_adding_an_issue_allocates_the_next_identifier(staff, company, agent, admin_user):
    factories.IssueFactory(company=company)  # ACM-1
    label = factories.LabelFactory(company=company)

    data = form_data(staff.get(ADD))
    data |= {"company": company.pk, "title": "Ship it", "assignee_agent": agent.pk}
    data |= {"labels": [label.pk]}
    response = staff.post(ADD, data)

    assert response.status_code == 302
    issue = Issue.objects.get(title="Ship it")
    assert (issue.identifier, issue.number, issue.status) == ("ACM-2", 2, Status.TODO)
    assert (issue.created_by_user, list(issue.labels.all())) == (admin_user, [label])
    assert ActivityEvent.objects.get(action="issue.created").entity_id == issue.pk


def test_picking_another_companys_row_is_a_form_error(staff, company, other_agent):
    data = form_data(staff.get(ADD))
    data |= {"company": company.pk, "title": "Ship it", "assignee_agent": other_agent.pk}

    response = staff.post(ADD, data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "assignee_agent": ["Pick one of this company's own."]
    }
    assert not Issue.objects.exists()


def test_staff_sees_only_the_issues_of_their_companies(client, board_user, company, other_company):
    board_user.user_permissions.add(Permission.objects.get(codename="view_issue"))
    client.force_login(board_user)
    ours = factories.IssueFactory(company=company)
    theirs = factories.IssueFactory(company=other_company)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [ours]
    assert client.get(change_url(theirs)).status_code == 302  # "does not exist", like a 404


def test_deleting_an_issue_goes_through_the_service(staff, company):
    issue = factories.IssueFactory(company=company)

    response = staff.post(reverse("admin:issues_issue_delete", args=[issue.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not Issue.objects.exists()
    assert ActivityEvent.objects.get().details == {"identifier": "ACM-1", "title": issue.title}
