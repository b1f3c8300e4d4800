"""Issue CRUD over `/api`: identifiers, the detail view, validation, If-Match, delete, and the
list's filters, order, pagination and query count."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from companies.models import ActivityEvent
from issues.models import Comment, Issue, Priority
from tests import factories
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "Not found", "code": "not_found"}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def other_board(other_company):
    """The board owner of the other company, with its own token."""
    user = factories.MembershipFactory(company=other_company, user__username="olga").user
    token = factories.BoardTokenFactory(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.token}")
    return client


def issues_url(company) -> str:
    return f"/api/companies/{company.pk}/issues"


def issue_url(issue) -> str:
    return f"/api/issues/{issue.pk}"


def create(client, company, **fields):
    return client.post(issues_url(company), {"title": "Work", **fields}, format="json")


def ids(response) -> list[str]:
    return [row["id"] for row in response.json()]


# -- create and identifiers ------------------------------------------------------------------


def test_create_answers_201_with_the_issue_and_logs_it(board, board_user, company, agent):
    project = factories.ProjectFactory(company=company)
    label = factories.LabelFactory(company=company, name="bug")

    response = create(
        board,
        company,
        title="Implement caching layer",
        description="Add Redis caching for hot queries",
        priority="high",
        assigneeAgentId=agent.pk,
        projectId=project.pk,
        labelIds=[label.pk],
        billingCode="R&D",
        budgetUsd="12.50",
        dueAt="2030-01-02T03:04:05Z",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"] == wire(stored(body["id"], Issue))
    assert body["companyId"] == wire(company)
    assert (body["identifier"], body["number"]) == ("ACM-1", 1)
    assert body["title"] == "Implement caching layer"
    assert body["description"] == "Add Redis caching for hot queries"
    assert (body["status"], body["priority"]) == ("todo", "high")
    assert (body["assigneeAgentId"], body["assigneeUserId"]) == (wire(agent), None)
    assert body["projectId"] == wire(project)
    assert body["labelIds"] == [wire(label)]
    assert body["labels"] == [{"id": wire(label), "name": "bug", "color": ""}]
    assert body["billingCode"] == "R&D"
    assert body["budgetUsd"] == 12.5
    assert body["dueAt"] == "2030-01-02T03:04:05.000000Z"
    assert body["createdByUserId"] == wire(board_user)
    assert body["createdByAgentId"] is None
    assert response.headers["ETag"] == '"1"'

    issue = Issue.objects.get(pk=stored(body["id"], Issue))
    assert (issue.identifier, issue.company_id, issue.assignee_agent_id) == (
        "ACM-1",
        company.pk,
        agent.pk,
    )
    assert issue.priority == Priority.HIGH
    assert list(issue.labels.all()) == [label]
    [row] = ActivityEvent.objects.filter(issue_id=issue.pk)
    assert (row.action, row.actor_type, row.actor_id) == ("issue.created", "user", board_user.pk)


def test_priority_defaults_to_medium(board, company):
    response = create(board, company)

    assert response.status_code == 201
    assert response.json()["priority"] == "medium"
    assert Issue.objects.get(pk=stored(response.json()["id"], Issue)).priority == Priority.MEDIUM


def test_agent_may_create_an_issue_and_is_recorded_as_its_creator(agent_client, company, agent):
    response = create(agent_client, company, title="Follow-up")

    assert response.status_code == 201, response.json()
    assert response.json()["createdByAgentId"] == wire(agent)
    assert Issue.objects.get(pk=stored(response.json()["id"], Issue)).created_by_agent == agent


def test_identifiers_count_up_per_company_independently(board, other_board, company, other_company):
    identifiers = [
        create(board, company).json()["identifier"],
        create(other_board, other_company).json()["identifier"],
        create(board, company).json()["identifier"],
        create(board, company).json()["identifier"],
        create(other_board, other_company).json()["identifier"],
    ]

    assert identifiers == ["ACM-1", "GLO-1", "ACM-2", "ACM-3", "GLO-2"]
    company.refresh_from_db()
    other_company.refresh_from_db()
    assert (company.issue_counter, other_company.issue_counter) == (3, 2)
    assert sorted(Issue.objects.filter(company=company).values_list("number", flat=True)) == [
        1,
        2,
        3,
    ]


def test_create_in_another_company_is_404_and_creates_nothing(other_client, company):
    response = create(other_client, company)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert not Issue.objects.exists()


def test_create_without_credentials_is_401(anon, company):
    response = create(anon, company)

    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert not Issue.objects.exists()


# -- retrieve --------------------------------------------------------------------------------


@pytest.fixture
def family(company):
    """grandparent ← parent ← child, each with its own project and goal."""
    issues = {}
    parent = None
    for name in ("grandparent", "parent", "child"):
        project = factories.ProjectFactory(company=company, name=f"{name} project")
        goal = factories.GoalFactory(company=company, title=f"{name} goal", level="team")
        parent = factories.IssueFactory(
            company=company, title=name, parent=parent, project=project, goal=goal
        )
        issues[name] = parent
    return issues


def summary(issue: Issue) -> dict:
    project, goal = issue.project, issue.goal
    return {
        "id": wire(issue),
        "identifier": issue.identifier,
        "title": issue.title,
        "status": issue.status,
        "projectId": wire(project),
        "goalId": wire(goal),
        "project": {"id": wire(project), "name": project.name, "status": project.status},
        "goal": {"id": wire(goal), "title": goal.title, "level": goal.level, "status": goal.status},
    }


def test_get_by_id_answers_the_issue_with_project_goal_and_ancestors_nearest_first(board, family):
    child = family["child"]

    response = board.get(issue_url(child))

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["identifier"], body["title"]) == (wire(child), "ACM-3", "child")
    assert body["parentId"] == wire(family["parent"])
    assert body["project"] == {
        "id": wire(child.project),
        "name": "child project",
        "status": child.project.status,
    }
    assert body["goal"] == {
        "id": wire(child.goal),
        "title": "child goal",
        "level": "team",
        "status": child.goal.status,
    }
    assert body["ancestors"] == [summary(family["parent"]), summary(family["grandparent"])]
    assert response.headers["ETag"] == '"1"'


def test_top_level_issue_has_no_ancestors(board, family):
    response = board.get(issue_url(family["grandparent"]))

    assert response.status_code == 200
    assert response.json()["ancestors"] == []


@pytest.mark.parametrize("ref", ["ACM-3", "acm-3", "Acm-3"])
def test_get_by_identifier_is_case_insensitive(board, family, ref):
    response = board.get(f"/api/issues/{ref}")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["identifier"]) == (wire(family["child"]), "ACM-3")
    assert [row["identifier"] for row in body["ancestors"]] == ["ACM-2", "ACM-1"]


def test_agent_of_the_company_reads_any_issue(agent_client, company):
    issue = factories.IssueFactory(
        company=company, assignee_agent=factories.AgentFactory(company=company)
    )

    response = agent_client.get(issue_url(issue))

    assert response.status_code == 200
    assert response.json()["id"] == wire(issue)


@pytest.mark.parametrize("as_identifier", [False, True], ids=["by-id", "by-identifier"])
def test_issue_of_another_company_is_404(other_client, company, as_identifier):
    issue = factories.IssueFactory(company=company)

    response = other_client.get(f"/api/issues/{issue.identifier if as_identifier else issue.pk}")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize("ref", ["iss_00000000000000000000000000", "ACM-999", "nonsense"])
def test_unknown_issue_is_404(board, company, ref):
    factories.IssueFactory(company=company)

    response = board.get(f"/api/issues/{ref}")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_unknown_api_route_is_a_json_404(board):
    response = board.get("/api/no/such/route")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == NOT_FOUND


# -- validation ------------------------------------------------------------------------------


def assert_validation_error(response, field: str) -> None:
    assert response.status_code == 400, response.json()
    body = response.json()
    assert (body["error"], body["code"]) == ("Validation failed", "validation_error")
    assert set(body["details"]) == {field}
    messages = body["details"][field]
    assert isinstance(messages, list) and messages
    assert all(isinstance(message, str) and message for message in messages)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"description": "no title"}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"title": "t", "priority": "urgent"}, "priority"),
        ({"title": "t", "status": "frobnicated"}, "status"),
        ({"title": "t", "parentId": "iss_00000000000000000000000000"}, "parentId"),
        ({"title": "t", "parentId": "ACM-404"}, "parentId"),
        ({"title": "t", "budgetUsd": "-0.01"}, "budgetUsd"),
        ({"title": "t", "dueAt": "next tuesday"}, "dueAt"),
        ({"title": "t", "assigneeAgentId": "agt_00000000000000000000000000"}, "assigneeAgentId"),
    ],
    ids=[
        "missing-title",
        "blank-title",
        "too-long-title",
        "unknown-priority",
        "unknown-status",
        "unknown-parent-id",
        "unknown-parent-identifier",
        "negative-budget",
        "due-at-not-a-date",
        "unknown-agent",
    ],
)
def test_create_with_a_bad_field_is_400_naming_that_field(board, company, payload, field):
    response = board.post(issues_url(company), payload, format="json")

    assert_validation_error(response, field)
    assert not Issue.objects.exists()
    company.refresh_from_db()
    assert company.issue_counter == 0


def test_assignee_agent_of_another_company_is_400_not_404(board, company, other_agent):
    response = create(board, company, assigneeAgentId=other_agent.pk)

    assert_validation_error(response, "assigneeAgentId")
    assert not Issue.objects.exists()


def test_labels_of_another_company_are_400(board, company, other_company):
    ours = factories.LabelFactory(company=company)
    theirs = factories.LabelFactory(company=other_company)

    response = create(board, company, labelIds=[ours.pk, theirs.pk])

    assert_validation_error(response, "labelIds")
    assert not Issue.objects.exists()


def test_parent_of_another_company_is_400(board, company, other_company):
    theirs = factories.IssueFactory(company=other_company)

    response = create(board, company, parentId=theirs.pk)

    assert_validation_error(response, "parentId")


def test_every_bad_field_is_named_at_once(board, company):
    response = board.post(
        issues_url(company), {"priority": "urgent", "budgetUsd": "-1"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert set(response.json()["details"]) == {"title", "priority", "budgetUsd"}


def test_patch_making_an_issue_its_own_parent_is_400(board, company):
    issue = factories.IssueFactory(company=company)

    response = board.patch(issue_url(issue), {"parentId": issue.pk}, format="json")

    assert_validation_error(response, "parentId")
    issue.refresh_from_db()
    assert (issue.parent_id, issue.version) == (None, 1)


def test_patch_closing_a_parent_cycle_is_400_and_changes_nothing(board, company):
    a = factories.IssueFactory(company=company)
    b = factories.IssueFactory(company=company, parent=a)
    c = factories.IssueFactory(company=company, parent=b)

    response = board.patch(issue_url(a), {"parentId": c.identifier}, format="json")

    assert_validation_error(response, "parentId")
    a.refresh_from_db()
    assert (a.parent_id, a.version) == (None, 1)
    assert not ActivityEvent.objects.filter(issue_id=a.pk).exists()


def test_patch_closing_a_two_issue_cycle_is_400(board, company):
    a = factories.IssueFactory(company=company)
    b = factories.IssueFactory(company=company, parent=a)

    response = board.patch(issue_url(a), {"parentId": b.pk}, format="json")

    assert_validation_error(response, "parentId")
    a.refresh_from_db()
    assert a.parent_id is None


def test_patch_to_an_unknown_status_is_400_naming_status(board, company):
    issue = factories.IssueFactory(company=company, status="todo")

    response = board.patch(issue_url(issue), {"status": "someday"}, format="json")

    assert_validation_error(response, "status")
    issue.refresh_from_db()
    assert (issue.status, issue.version) == ("todo", 1)


def test_patch_with_a_bad_field_is_400_and_changes_nothing(board, company):
    issue = factories.IssueFactory(company=company, title="Keep me")

    response = board.patch(issue_url(issue), {"title": "y" * 501}, format="json")

    assert_validation_error(response, "title")
    issue.refresh_from_db()
    assert (issue.title, issue.version) == ("Keep me", 1)


def test_non_json_body_is_400_parse_error(board, company):
    response = board.post(
        issues_url(company), data='{"title": "unterminated', content_type="application/json"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "parse_error"
    assert isinstance(body["error"], str) and body["error"]
    assert not Issue.objects.exists()


def test_non_json_patch_body_is_400_parse_error(board, company):
    issue = factories.IssueFactory(company=company, title="Keep me")

    response = board.patch(issue_url(issue), data="title=oops", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    issue.refresh_from_db()
    assert issue.title == "Keep me"


# -- PATCH with a comment --------------------------------------------------------------------


def test_patch_with_a_comment_updates_and_comments_in_one_go(board, board_user, company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = board.patch(
        issue_url(issue),
        {"status": "blocked", "comment": "Waiting on the vendor."},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "blocked"
    comments = board.get(f"{issue_url(issue)}/comments").json()
    assert [(c["body"], c["authorUserId"]) for c in comments] == [
        ("Waiting on the vendor.", wire(board_user))
    ]
    rows = ActivityEvent.objects.filter(issue_id=issue.pk).order_by("created_at", "id")
    assert [row.action for row in rows] == ["issue.updated", "issue.comment_added"]
    assert rows[1].entity_id == stored(comments[0]["id"], Comment)


def test_patch_with_only_a_comment_logs_only_the_comment(board, company):
    issue = factories.IssueFactory(company=company, title="Same")

    response = board.patch(issue_url(issue), {"comment": "Just a note"}, format="json")

    assert response.status_code == 200, response.json()
    issue.refresh_from_db()
    assert (issue.title, issue.version) == ("Same", 1)
    assert list(issue.comments.values_list("body", flat=True)) == ["Just a note"]
    actions = list(ActivityEvent.objects.filter(issue_id=issue.pk).values_list("action", flat=True))
    assert actions == ["issue.comment_added"]


def test_failed_patch_does_not_keep_its_comment(board, company):
    issue = factories.IssueFactory(company=company, status="backlog")

    response = board.patch(
        issue_url(issue), {"status": "done", "comment": "Shipped!"}, format="json"
    )

    assert response.status_code == 422
    assert not Comment.objects.filter(issue=issue).exists()
    assert not ActivityEvent.objects.filter(issue_id=issue.pk).exists()


def test_patch_logs_previous_values(board, company):
    issue = factories.IssueFactory(company=company, title="Before", priority=Priority.LOW)

    response = board.patch(issue_url(issue), {"title": "After", "priority": "high"}, format="json")

    assert response.status_code == 200, response.json()
    [row] = ActivityEvent.objects.filter(issue_id=issue.pk)
    assert row.action == "issue.updated"
    changes = row.details["changes"]
    assert changes["title"] == {"from": "Before", "to": "After"}
    assert set(changes) == {"title", "priority"}


# -- If-Match --------------------------------------------------------------------------------


def test_patch_with_the_current_etag_succeeds_and_answers_a_new_etag(board, company):
    issue = factories.IssueFactory(company=company, title="v1")
    etag = board.get(issue_url(issue)).headers["ETag"]

    response = board.patch(issue_url(issue), {"title": "v2"}, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 200, response.json()
    assert response.json()["title"] == "v2"
    assert response.headers["ETag"] != etag
    assert board.get(issue_url(issue)).headers["ETag"] == response.headers["ETag"]
    issue.refresh_from_db()
    assert issue.title == "v2"


def test_patch_with_a_stale_etag_is_412_and_changes_nothing(board, company):
    issue = factories.IssueFactory(company=company, title="v1")
    stale = board.get(issue_url(issue)).headers["ETag"]
    assert (
        board.patch(issue_url(issue), {"title": "v2"}, format="json", HTTP_IF_MATCH=stale)
    ).status_code == 200

    response = board.patch(
        issue_url(issue), {"title": "v3", "comment": "lost"}, format="json", HTTP_IF_MATCH=stale
    )

    assert response.status_code == 412
    assert response.json()["code"] == "precondition_failed"
    issue.refresh_from_db()
    assert (issue.title, issue.version) == ("v2", 2)
    assert not Comment.objects.filter(issue=issue).exists()
    assert ActivityEvent.objects.filter(issue_id=issue.pk).count() == 1


def test_patch_without_if_match_is_unconditional(board, company):
    issue = factories.IssueFactory(company=company, title="v1")

    response = board.patch(issue_url(issue), {"title": "v2"}, format="json")

    assert response.status_code == 200
    issue.refresh_from_db()
    assert issue.title == "v2"


# -- delete ----------------------------------------------------------------------------------


def test_board_deletes_an_issue_and_the_log_remembers_it(board, board_user, company):
    issue = factories.IssueFactory(company=company, title="Doomed")

    response = board.delete(issue_url(issue))

    assert response.status_code == 204
    assert response.content == b""
    follow_up = board.get(issue_url(issue))
    assert follow_up.status_code == 404
    assert follow_up.json() == NOT_FOUND
    assert not Issue.objects.filter(pk=issue.pk).exists()
    [row] = ActivityEvent.objects.filter(entity_id=issue.pk)
    assert (row.action, row.actor_type, row.actor_id) == ("issue.deleted", "user", board_user.pk)
    assert row.details["identifier"] == issue.identifier


def test_agent_cannot_delete_an_issue(agent_client, company, agent):
    issue = factories.IssueFactory(company=company, assignee_agent=agent)

    response = agent_client.delete(issue_url(issue))

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert Issue.objects.filter(pk=issue.pk).exists()
    assert not ActivityEvent.objects.filter(issue_id=issue.pk).exists()


def test_board_of_another_company_cannot_delete_an_issue(other_board, company):
    issue = factories.IssueFactory(company=company)

    response = other_board.delete(issue_url(issue))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert Issue.objects.filter(pk=issue.pk).exists()


# -- list: filters ---------------------------------------------------------------------------


def test_list_shows_only_the_company_issues(board, company, other_company):
    ours = factories.IssueFactory(company=company)
    factories.IssueFactory(company=other_company)

    response = board.get(issues_url(company))

    assert response.status_code == 200
    assert ids(response) == [wire(ours)]


def test_list_of_another_company_is_404(other_client, company):
    factories.IssueFactory(company=company)

    response = other_client.get(issues_url(company))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_list_filters_by_a_comma_list_of_statuses(board, company, agent):
    todo = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)
    blocked = factories.IssueFactory(company=company, status="blocked")
    factories.IssueFactory(company=company, status="backlog")
    factories.IssueFactory(company=company, status="done")

    response = board.get(issues_url(company), {"status": "todo,blocked"})

    assert response.status_code == 200
    assert sorted(ids(response)) == sorted([wire(todo), wire(blocked)])


def test_list_with_an_unknown_status_is_400(board, company):
    response = board.get(issues_url(company), {"status": "todo,someday"})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert "status" in body["details"]


def test_list_filters_by_assignee_agent(board, company, agent):
    other = factories.AgentFactory(company=company)
    mine = factories.IssueFactory(company=company, assignee_agent=agent)
    factories.IssueFactory(company=company, assignee_agent=other)
    factories.IssueFactory(company=company)

    response = board.get(issues_url(company), {"assigneeAgentId": agent.pk})

    assert response.status_code == 200
    assert ids(response) == [wire(mine)]


def test_list_with_assignee_agent_null_shows_only_unassigned_issues(board, company, agent):
    factories.IssueFactory(company=company, assignee_agent=agent)
    unassigned = factories.IssueFactory(company=company)

    response = board.get(issues_url(company), {"assigneeAgentId": "null"})

    assert response.status_code == 200
    assert ids(response) == [wire(unassigned)]


def test_list_filters_by_project(board, company):
    project = factories.ProjectFactory(company=company)
    inside = factories.IssueFactory(company=company, project=project)
    factories.IssueFactory(company=company, project=factories.ProjectFactory(company=company))
    factories.IssueFactory(company=company)

    response = board.get(issues_url(company), {"projectId": project.pk})

    assert response.status_code == 200
    assert ids(response) == [wire(inside)]


def test_list_filters_by_parent(board, company):
    parent = factories.IssueFactory(company=company)
    child = factories.IssueFactory(company=company, parent=parent)
    factories.IssueFactory(company=company, parent=child)  # a grandchild is not a child

    response = board.get(issues_url(company), {"parentId": parent.pk})

    assert response.status_code == 200
    assert ids(response) == [wire(child)]


def test_list_filters_by_label(board, company):
    bug, ui = factories.LabelFactory(company=company), factories.LabelFactory(company=company)
    both = factories.IssueFactory(company=company)
    both.labels.set([bug, ui])
    only_ui = factories.IssueFactory(company=company)
    only_ui.labels.set([ui])
    factories.IssueFactory(company=company)

    response = board.get(issues_url(company), {"labelId": bug.pk})

    assert response.status_code == 200
    assert ids(response) == [wire(both)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [("CACHING", "by_title"), ("acm-2", "by_identifier"), ("redis", "by_description")],
)
def test_list_search_matches_title_identifier_and_description(board, company, query, expected):
    issues = {
        "by_title": factories.IssueFactory(company=company, title="Add a caching layer"),
        "by_identifier": factories.IssueFactory(company=company, title="Second"),
        "by_description": factories.IssueFactory(
            company=company, title="Third", description="Use Redis for hot keys"
        ),
    }
    factories.IssueFactory(company=company, title="Unrelated")

    response = board.get(issues_url(company), {"q": query})

    assert response.status_code == 200
    assert ids(response) == [wire(issues[expected])]


# -- list: order and pagination --------------------------------------------------------------


def test_list_orders_by_priority_then_most_recently_updated(board, company):
    now = timezone.now()

    def make(priority, hours_ago):
        return factories.IssueFactory(
            company=company, priority=priority, updated_at=now - timedelta(hours=hours_ago)
        )

    low_recent = make(Priority.LOW, 0)
    medium_old = make(Priority.MEDIUM, 5)
    critical_old = make(Priority.CRITICAL, 3)
    high = make(Priority.HIGH, 2)
    medium_new = make(Priority.MEDIUM, 4)
    critical_new = make(Priority.CRITICAL, 1)

    response = board.get(issues_url(company))

    assert response.status_code == 200
    assert ids(response) == [
        wire(critical_new),
        wire(critical_old),
        wire(high),
        wire(medium_new),
        wire(medium_old),
        wire(low_recent),
    ]
    assert [row["priority"] for row in response.json()] == [
        "critical",
        "critical",
        "high",
        "medium",
        "medium",
        "low",
    ]


@pytest.fixture
def seven_issues(company):
    """Seven issues with ties in both sort keys, so the cursor must use the id too."""
    now = timezone.now()
    return [
        factories.IssueFactory(
            company=company, priority=[Priority.HIGH, Priority.LOW][i % 2], updated_at=now
        )
        for i in range(7)
    ]


def test_list_limit_answers_that_many_rows_and_a_next_cursor(board, company, seven_issues):
    response = board.get(issues_url(company), {"limit": 2})

    assert response.status_code == 200
    assert len(response.json()) == 2
    assert response.headers["X-Next-Cursor"]


def test_following_cursors_walks_every_issue_exactly_once_in_list_order(
    board, company, seven_issues
):
    everything = ids(board.get(issues_url(company)))
    seen, pages, cursor = [], [], None

    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = board.get(issues_url(company), params)
        assert response.status_code == 200
        pages.append(len(response.json()))
        seen += ids(response)
        cursor = response.headers.get("X-Next-Cursor")
        if not cursor:
            break

    assert pages == [2, 2, 2, 1]
    assert seen == everything
    assert sorted(seen) == sorted(wire(issue) for issue in seven_issues)


def test_last_page_has_no_next_cursor(board, company, seven_issues):
    response = board.get(issues_url(company), {"limit": 7})

    assert response.status_code == 200
    assert len(response.json()) == 7
    assert "X-Next-Cursor" not in response.headers


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten"])
def test_list_limit_out_of_range_is_400(board, company, limit):
    response = board.get(issues_url(company), {"limit": limit})

    assert response.status_code == 400
    assert "limit" in response.json()["details"]


def test_list_limit_of_1000_is_accepted(board, company, seven_issues):
    response = board.get(issues_url(company), {"limit": 1000})

    assert response.status_code == 200
    assert len(response.json()) == 7


def forged_cursor(values) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "bm90IGpzb24",  # base64 of "not json"
        forged_cursor(["x"]),  # wrong length
        forged_cursor(["high", "yesterday", 42]),  # right length, wrong types
        forged_cursor({"priority": 1}),
    ],
    ids=["not-base64", "not-json", "wrong-length", "wrong-types", "not-a-list"],
)
def test_list_with_a_garbage_cursor_is_400(board, company, seven_issues, cursor):
    response = board.get(issues_url(company), {"cursor": cursor})

    assert response.status_code == 400
    assert "cursor" in response.json()["details"]


# -- list: query count -----------------------------------------------------------------------


def populate(company, n: int, *, dependencies: bool = False) -> None:
    """n issues: a parent, then children with an assignee, a project, a goal, a team and two
    labels (and, when asked, a dependency on the parent)."""
    labels = [factories.LabelFactory(company=company) for _ in range(2)]
    parent = factories.IssueFactory(company=company)
    for _ in range(n - 1):
        issue = factories.IssueFactory(
            company=company,
            assignee_agent=factories.AgentFactory(company=company),
            project=factories.ProjectFactory(company=company),
            goal=factories.GoalFactory(company=company),
            team=factories.TeamFactory(company=company),
            parent=parent,
        )
        issue.labels.set(labels)
        if dependencies:
            issue.dependencies.set([parent])


def list_queries(client, company, expected_rows: int) -> list[str]:
    client.get(issues_url(company))  # warm up: the token's last-used stamp is written once
    with CaptureQueriesContext(connection) as captured:
        response = client.get(issues_url(company))
    assert response.status_code == 200
    assert len(response.json()) == expected_rows
    return [query["sql"] for query in captured.captured_queries]


def without_savepoints(queries: list[str]) -> list[str]:
    return [sql for sql in queries if "SAVEPOINT" not in sql]


# The list's queries, whatever the number of rows: the board token (with its user), the caller's
# memberships, the company, the list's version (its ETag), and the page of issues with their
# labels and dependencies (in the same statement, IssueQuerySet.with_relations). The request's
# transaction adds its savepoints.
LIST_QUERIES = 5


def test_list_query_count_does_not_grow_with_the_number_of_issues(board, company):
    populate(company, 3)
    few = list_queries(board, company, 3)

    populate(company, 27)
    many = list_queries(board, company, 30)

    assert len(many) == len(few)
    assert len(without_savepoints(many)) == LIST_QUERIES


def test_list_query_count_does_not_grow_with_the_number_of_dependencies(board, company):
    populate(company, 3, dependencies=True)
    few = list_queries(board, company, 3)

    populate(company, 27, dependencies=True)
    many = list_queries(board, company, 30)

    assert len(many) == len(few)
    assert len(without_savepoints(many)) == LIST_QUERIES


@pytest.mark.parametrize("due", ["0121-04-12T03:27:53Z", "0999-12-31T23:59:59Z"])
def test_a_due_date_before_the_year_1000_is_400_not_a_date_the_api_cannot_write_back(
    board, company, due
):
    issue = factories.IssueFactory(company=company)

    response = board.patch(f"/api/issues/{issue.pk}", {"dueAt": due}, format="json")

    assert response.status_code == 400
    assert response.json()["details"] == {"dueAt": ["Must be between the years 1000 and 9999."]}
    issue.refresh_from_db()
    assert issue.due_at is None


def test_a_due_date_in_the_year_1000_round_trips_in_iso_8601(board, company):
    issue = factories.IssueFactory(company=company)

    response = board.patch(
        f"/api/issues/{issue.pk}", {"dueAt": "1000-01-02T03:04:05Z"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["dueAt"] == "1000-01-02T03:04:05.000000Z"
