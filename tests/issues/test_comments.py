"""Comments on an issue: who may write them, how the list is ordered and paged, and that another
company sees none of them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from companies.models import ActivityEvent
from issues.models import Comment
from tests import factories
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "Not found", "code": "not_found"}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def issue(company):
    return factories.IssueFactory(company=company, status="todo")


@pytest.fixture
def five(issue):
    """Five comments a minute apart, oldest first: c[0] … c[4]."""
    start = timezone.now() - timedelta(hours=1)
    return [
        factories.CommentFactory(
            issue=issue, body=f"comment {i}", created_at=start + timedelta(minutes=i)
        )
        for i in range(5)
    ]


def comments_url(issue) -> str:
    return f"/api/issues/{issue.pk}/comments"


def bodies(response) -> list[str]:
    return [row["body"] for row in response.json()]


# -- create ----------------------------------------------------------------------------------


def test_board_comment_is_201_and_names_the_user_as_author(board, board_user, company, issue):
    response = board.post(comments_url(issue), {"body": "Looks good **so far**"}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    comment = Comment.objects.get(pk=stored(body["id"], Comment))
    assert body["id"] == wire(comment)
    assert (body["issueId"], body["companyId"]) == (wire(issue), wire(company))
    assert body["body"] == "Looks good **so far**"
    assert (body["authorUserId"], body["authorAgentId"]) == (wire(board_user), None)
    assert body["createdAt"]
    assert (comment.issue_id, comment.author_user_id, comment.author_agent_id) == (
        issue.pk,
        board_user.pk,
        None,
    )
    [row] = ActivityEvent.objects.filter(issue_id=issue.pk)
    assert (row.action, row.entity_type, row.entity_id) == (
        "issue.comment_added",
        "comment",
        comment.pk,
    )


def test_agent_comment_is_201_and_names_the_agent_as_author(agent_client, agent, issue):
    response = agent_client.post(comments_url(issue), {"body": "On it."}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["authorAgentId"], body["authorUserId"]) == (wire(agent), None)
    assert body["body"] == "On it."
    comment = Comment.objects.get(pk=stored(body["id"], Comment))
    assert (comment.author_agent_id, comment.author_user_id) == (agent.pk, None)


def test_comment_by_identifier_lands_on_that_issue(board, issue):
    response = board.post(
        f"/api/issues/{issue.identifier.lower()}/comments",
        {"body": "via identifier"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["issueId"] == wire(issue)
    assert list(issue.comments.values_list("body", flat=True)) == ["via identifier"]


@pytest.mark.parametrize(
    "payload", [{"body": ""}, {}, {"body": None}], ids=["empty", "missing", "null"]
)
def test_comment_without_a_body_is_400(board, issue, payload):
    response = board.post(comments_url(issue), payload, format="json")

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["code"]) == ("Validation failed", "validation_error")
    assert set(body["details"]) == {"body"}
    assert not Comment.objects.exists()
    assert not ActivityEvent.objects.exists()


@pytest.mark.parametrize("status", ["todo", "in_progress"])
def test_agent_may_comment_on_an_issue_assigned_to_another_agent(
    agent_client, agent, company, status
):
    colleague = factories.AgentFactory(company=company, name="Colleague")
    run = factories.HeartbeatRunFactory(agent=colleague, status="running")
    theirs = factories.IssueFactory(
        company=company,
        status=status,
        assignee_agent=colleague,
        checkout_run=run if status == "in_progress" else None,
    )
    own_run = factories.HeartbeatRunFactory(agent=agent, status="running")

    response = agent_client.post(
        comments_url(theirs),
        {"body": "FYI: the API changed."},
        format="json",
        HTTP_X_PAPERCLIP_RUN_ID=own_run.pk,
    )

    assert response.status_code == 201, response.json()
    assert response.json()["authorAgentId"] == wire(agent)
    theirs.refresh_from_db()
    assert (theirs.status, theirs.assignee_agent_id, theirs.checkout_run_id) == (
        status,
        colleague.pk,
        run.pk if status == "in_progress" else None,
    )
    assert list(theirs.comments.values_list("author_agent_id", flat=True)) == [agent.pk]


def test_agent_of_another_company_cannot_comment(other_client, issue):
    response = other_client.post(comments_url(issue), {"body": "Hello?"}, format="json")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert not Comment.objects.exists()
    assert not ActivityEvent.objects.exists()


def test_comment_on_an_unknown_issue_is_404(board, company):
    response = board.post(
        "/api/issues/iss_00000000000000000000000000/comments", {"body": "x"}, format="json"
    )

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# -- list ------------------------------------------------------------------------------------


def test_list_is_newest_first_by_default(board, issue, five):
    response = board.get(comments_url(issue))

    assert response.status_code == 200
    assert bodies(response) == ["comment 4", "comment 3", "comment 2", "comment 1", "comment 0"]
    first = response.json()[0]
    assert first == {
        "id": wire(five[4]),
        "companyId": wire(issue.company_id),
        "issueId": wire(issue),
        "authorAgentId": None,
        "authorUserId": None,
        "body": "comment 4",
        "runId": None,
        "createdAt": five[4].created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "updatedAt": first["updatedAt"],
    }


def test_list_order_asc_is_oldest_first(board, issue, five):
    response = board.get(comments_url(issue), {"order": "asc"})

    assert response.status_code == 200
    assert bodies(response) == ["comment 0", "comment 1", "comment 2", "comment 3", "comment 4"]


def test_list_order_desc_is_newest_first(board, issue, five):
    response = board.get(comments_url(issue), {"order": "desc"})

    assert response.status_code == 200
    assert bodies(response) == ["comment 4", "comment 3", "comment 2", "comment 1", "comment 0"]


def test_list_with_an_unknown_order_is_400(board, issue, five):
    response = board.get(comments_url(issue), {"order": "sideways"})

    assert response.status_code == 400
    assert "order" in response.json()["details"]


def test_list_shows_only_this_issue_comments(board, company, issue, five):
    factories.CommentFactory(issue=factories.IssueFactory(company=company), body="elsewhere")

    response = board.get(comments_url(issue))

    assert response.status_code == 200
    assert "elsewhere" not in bodies(response)
    assert len(response.json()) == 5


def test_list_limit_caps_the_page(board, issue, five):
    response = board.get(comments_url(issue), {"limit": 2})

    assert response.status_code == 200
    assert bodies(response) == ["comment 4", "comment 3"]
    assert response.headers["X-Next-Cursor"]


def test_list_limit_of_500_is_accepted(board, issue, five):
    response = board.get(comments_url(issue), {"limit": 500})

    assert response.status_code == 200
    assert len(response.json()) == 5


@pytest.mark.parametrize("limit", ["501", "0", "many"])
def test_list_limit_outside_1_to_500_is_400(board, issue, five, limit):
    response = board.get(comments_url(issue), {"limit": limit})

    assert response.status_code == 400
    assert "limit" in response.json()["details"]


def test_after_pages_newest_first(board, issue, five):
    response = board.get(comments_url(issue), {"after": five[3].pk})

    assert response.status_code == 200
    assert bodies(response) == ["comment 2", "comment 1", "comment 0"]


def test_after_pages_oldest_first_with_order_asc(board, issue, five):
    response = board.get(comments_url(issue), {"after": five[1].pk, "order": "asc"})

    assert response.status_code == 200
    assert bodies(response) == ["comment 2", "comment 3", "comment 4"]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_after_with_limit_walks_every_comment_once(board, issue, five, order):
    seen, after = [], None
    for _ in range(10):
        params = {"order": order, "limit": 2, **({"after": after} if after else {})}
        response = board.get(comments_url(issue), params)
        assert response.status_code == 200
        page = response.json()
        if not page:
            break
        seen += [row["id"] for row in page]
        after = page[-1]["id"]

    expected = wire(five)
    assert seen == (expected if order == "asc" else expected[::-1])


def test_after_the_last_comment_is_an_empty_page(board, issue, five):
    response = board.get(comments_url(issue), {"after": five[0].pk})

    assert response.status_code == 200
    assert response.json() == []
    assert "X-Next-Cursor" not in response.headers


def test_after_an_unknown_comment_is_400(board, issue, five):
    response = board.get(comments_url(issue), {"after": "cmt_00000000000000000000000000"})

    assert response.status_code == 400
    assert "after" in response.json()["details"]


def test_after_a_comment_of_another_issue_is_400(board, company, issue, five):
    stranger = factories.CommentFactory(issue=factories.IssueFactory(company=company))

    response = board.get(comments_url(issue), {"after": stranger.pk})

    assert response.status_code == 400
    assert "after" in response.json()["details"]


def test_agent_of_the_company_reads_comments_of_any_issue(agent_client, company, five, issue):
    response = agent_client.get(comments_url(issue))

    assert response.status_code == 200
    assert len(response.json()) == 5


def test_list_of_another_company_issue_is_404(other_client, issue, five):
    response = other_client.get(comments_url(issue))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# -- retrieve one ----------------------------------------------------------------------------


def test_get_one_comment(board, issue, five):
    response = board.get(f"{comments_url(issue)}/{five[2].pk}")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["issueId"], body["body"]) == (wire(five[2]), wire(issue), "comment 2")


def test_get_a_comment_through_another_issue_is_404(board, company, issue, five):
    other_issue = factories.IssueFactory(company=company)

    response = board.get(f"{comments_url(other_issue)}/{five[2].pk}")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_get_an_unknown_comment_is_404(board, issue, five):
    response = board.get(f"{comments_url(issue)}/cmt_00000000000000000000000000")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_get_a_comment_of_another_company_is_404(other_client, issue, five):
    response = other_client.get(f"{comments_url(issue)}/{five[2].pk}")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
