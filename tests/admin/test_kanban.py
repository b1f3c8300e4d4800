"""The kanban (DESIGN §11): a company's issues in a column per status; a move runs the
transition service (`issue_update`, as the issue page's buttons and the API's PATCH), a refused
one answers its reason and changes nothing, and another company's issues never show or move."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from companies.models import ActivityEvent
from issues.models import Issue, Status
from tests import factories
from tests.admin import messages_of

KANBAN = reverse("admin:issues_issue_kanban")
MOVE = reverse("admin:issues_issue_kanban_move")
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def member(client, board_user):
    """A board member (staff, not superuser) who may view and change issues."""
    board_user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_issue", "change_issue"])
    )
    client.force_login(board_user)
    return client


def column_cards(response) -> dict[str, list[str]]:
    return {
        column["status"]: [issue.identifier for issue in column["cards"]]
        for column in response.context["columns"]
    }


def test_the_board_has_a_column_per_status_with_its_cards(member, company, other_company):
    agent = factories.AgentFactory(company=company, name="Builder")
    todo = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)
    blocked = factories.IssueFactory(company=company, status="blocked")
    done = factories.IssueFactory(company=company, status="done")
    factories.IssueFactory(company=other_company, status="todo", title="Their secret")

    response = member.get(KANBAN)

    assert response.status_code == 200
    cards = column_cards(response)
    assert list(cards) == [
        "backlog", "todo", "in_progress", "in_review", "blocked", "done", "cancelled", "failed",
    ]  # fmt: skip
    assert cards["todo"] == [todo.identifier]
    assert cards["blocked"] == [blocked.identifier]
    assert cards["done"] == [done.identifier]
    page = response.content.decode()
    assert "Builder" in page and todo.title in page
    assert "Their secret" not in page
    assert 'name="csrfmiddlewaretoken"' in page  # the script's token, and each card's form


def test_a_member_of_two_companies_picks_one(member, board_user, company, other_company):
    factories.MembershipFactory(user=board_user, company=other_company)
    theirs = factories.IssueFactory(company=other_company, status="todo")

    response = member.get(KANBAN, {"company": other_company.pk})

    assert [c.pk for c in response.context["companies"]] == sorted(
        [company.pk, other_company.pk],
        key=lambda pk: {company.pk: company.name, other_company.pk: other_company.name}[pk],
    )
    assert column_cards(response)["todo"] == [theirs.identifier]


def test_a_company_one_is_not_a_member_of_is_not_offered(member, company, other_company):
    factories.IssueFactory(company=other_company, status="todo")

    response = member.get(KANBAN, {"company": other_company.pk})

    assert response.context["company"] == company  # not theirs
    assert column_cards(response)["todo"] == []


def test_an_allowed_move_runs_the_transition_and_logs_it(member, company):
    issue = factories.IssueFactory(company=company, status="todo")

    response = member.post(MOVE, {"issue": issue.pk, "status": "blocked"}, **JSON)

    assert response.status_code == 200
    assert response.json() == {"ok": True, "id": issue.pk, "status": "blocked"}
    issue.refresh_from_db()
    assert issue.status == Status.BLOCKED
    event = ActivityEvent.objects.get(issue_id=issue.pk, action="issue.updated")
    assert event.actor_type == "user"


def test_a_refused_move_answers_as_the_api_does_and_changes_nothing(member, company):
    issue = factories.IssueFactory(company=company, status="backlog")
    version = issue.version

    response = member.post(MOVE, {"issue": issue.pk, "status": "done"}, **JSON)

    # /api's error renderer: the status and body a PATCH of the same status would get.
    assert response.status_code == 422
    assert response.json() == {
        "error": "Invalid state transition",
        "code": "invalid_transition",
        "details": {"from": "backlog", "to": "done", "allowed": ["todo", "blocked", "cancelled"]},
    }
    issue.refresh_from_db()
    assert (issue.status, issue.version) == (Status.BACKLOG, version)
    assert not ActivityEvent.objects.filter(issue_id=issue.pk).exists()


def test_without_script_the_card_form_moves_and_comes_back_with_a_message(member, company):
    issue = factories.IssueFactory(company=company, status="todo")

    moved = member.post(MOVE, {"issue": issue.pk, "status": "blocked"}, follow=True)
    refused = member.post(MOVE, {"issue": issue.pk, "status": "done"}, follow=True)

    assert moved.redirect_chain[0][0] == f"{KANBAN}?company={company.pk}"
    assert f"{issue.identifier} moved to Blocked." in messages_of(moved)
    [said] = messages_of(refused)
    assert said.startswith(f"{issue.identifier}: ") and "from blocked to done" in said
    assert Issue.objects.get(pk=issue.pk).status == Status.BLOCKED


def test_another_companys_issue_never_moves(member, other_company):
    theirs = factories.IssueFactory(company=other_company, status="todo")

    response = member.post(MOVE, {"issue": theirs.pk, "status": "blocked"}, **JSON)

    assert response.status_code == 404
    assert Issue.objects.get(pk=theirs.pk).status == Status.TODO


def test_an_unknown_issue_is_404(member):
    response = member.post(MOVE, {"issue": "iss_nope", "status": "blocked"}, **JSON)

    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "code": "not_found"}


def test_a_move_is_a_post(member, company):
    issue = factories.IssueFactory(company=company, status="todo")

    assert member.get(MOVE, {"issue": issue.pk, "status": "blocked"}).status_code == 405


def test_a_move_needs_the_csrf_token(board_user, company):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    board_user.user_permissions.add(*Permission.objects.filter(codename="change_issue"))
    client.force_login(board_user)
    issue = factories.IssueFactory(company=company, status="todo")

    response = client.post(MOVE, {"issue": issue.pk, "status": "blocked"}, **JSON)

    assert response.status_code == 403
    assert Issue.objects.get(pk=issue.pk).status == Status.TODO


def test_a_viewer_without_change_permission_sees_no_move_and_cannot_move(
    client, board_user, company
):
    board_user.user_permissions.add(Permission.objects.get(codename="view_issue"))
    client.force_login(board_user)
    issue = factories.IssueFactory(company=company, status="todo")

    page = client.get(KANBAN)
    assert page.context["can_move"] is False
    assert 'draggable="true"' not in page.content.decode()
    assert client.post(MOVE, {"issue": issue.pk, "status": "blocked"}, **JSON).status_code == 403


def test_the_board_runs_a_fixed_number_of_queries(member, company, django_assert_num_queries):
    agent = factories.AgentFactory(company=company)

    def make(n):
        for status in ["todo", "blocked", "done"] * n:
            factories.IssueFactory(company=company, status=status, assignee_agent=agent)

    make(1)
    member.get(KANBAN)
    with django_assert_num_queries(QUERIES) as few:
        member.get(KANBAN)
    make(10)
    with django_assert_num_queries(QUERIES) as many:
        member.get(KANBAN)
    assert len(few) == len(many)


# The request's savepoint and its release; session; user; the user's and its groups'
# permissions; the member's companies (for the picker, and again for the scoped issues); the
# companies; the open cards and the finished ones (assignees joined).
QUERIES = 11


def active_entries(response) -> list[str]:
    return [
        item["title"]
        for group in response.context["sidebar_navigation"]
        for item in group["items"]
        if item["active"]
    ]


def test_the_sidebar_marks_only_the_page_one_is_on(member, company):
    factories.IssueFactory(company=company)

    assert active_entries(member.get(KANBAN)) == ["Kanban"]
    assert active_entries(member.get(reverse("admin:issues_issue_changelist"))) == ["Issues"]
    assert active_entries(member.get(reverse("admin:index"))) == ["Dashboard"]
