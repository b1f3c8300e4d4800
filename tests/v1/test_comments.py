"""`/v1` task comments (DESIGN §8): post one (201) as the caller, never in another's name (403),
and list them newest first in cursor pages; another company's task is 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import WakeupRequest
from companies.models import ActivityEvent
from issues.models import Comment, Status
from paperclip.ids import as_uuid
from tests import factories
from tests.conftest import client_for, iso

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(company, agent):
    return factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)


def comments_url(issue, company=None) -> str:
    return f"/v1/companies/{(company or issue.company).pk}/issues/{issue.pk}/comments"


@pytest.mark.parametrize("author", [None, "user:alice"])
def test_the_board_comments_as_itself_and_the_assignee_is_woken(board, task, agent, author):
    body = {"text": "Switching this to Opus.", **({"author": author} if author else {})}

    response = board.post(comments_url(task), body, format="json")

    assert response.status_code == 201, response.json()
    comment = Comment.objects.get(issue=task)
    assert response.json()["data"] == {
        "id": comment.pk,
        "taskId": task.pk,
        "author": "user:alice",
        "text": "Switching this to Opus.",
        "runId": None,
        "createdAt": iso(comment.created_at),
    }
    assert comment.author_user.username == "alice"
    assert ActivityEvent.objects.filter(action="issue.comment_added", issue_id=task.pk).count() == 1
    assert list(WakeupRequest.objects.filter(agent=agent).values_list("reason", flat=True)) == [
        "issue_commented"
    ]


def test_an_agent_comments_naming_itself_in_either_id_form(agent_client, task, agent):
    for form in (agent.pk, as_uuid(agent.pk)):
        response = agent_client.post(
            comments_url(task), {"text": "On it", "author": f"agent:{form}"}, format="json"
        )
        assert response.status_code == 201, response.json()
        assert response.json()["data"]["author"] == f"agent:{agent.pk}"

    assert Comment.objects.filter(issue=task, author_agent=agent).count() == 2


@pytest.mark.parametrize(
    ("who", "author"),
    [
        ("board", "user:bob"),
        ("board", "agent:{agent}"),
        ("agent", "user:alice"),
        ("agent", "agent:{peer}"),
        ("agent", "{agent}"),
    ],
)
def test_nobody_comments_in_anothers_name(board, agent_client, company, task, agent, who, author):
    peer = factories.AgentFactory(company=company, name="Peer")
    client = board if who == "board" else agent_client

    response = client.post(
        comments_url(task),
        {"text": "Not me", "author": author.format(agent=agent.pk, peer=peer.pk)},
        format="json",
    )

    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (
        "forbidden",
        "A comment's author must be the caller",
    )
    assert not Comment.objects.exists()
    assert not ActivityEvent.objects.exists()


def test_a_comment_needs_text_and_nothing_else(board, task):
    missing = board.post(comments_url(task), {}, format="json")
    extra = board.post(comments_url(task), {"text": "x", "body": "y"}, format="json")

    assert missing.status_code == extra.status_code == 400
    assert list(missing.json()["error"]["details"]) == ["text"]
    assert list(extra.json()["error"]["details"]) == ["body"]
    assert not Comment.objects.exists()


def test_a_finished_task_still_takes_comments(board, company):
    done = factories.IssueFactory(company=company, status=Status.DONE)

    response = board.post(comments_url(done), {"text": "Post-mortem"}, format="json")

    assert response.status_code == 201, response.json()


def test_the_list_is_newest_first_in_cursor_pages(
    board, board_user, task, agent, django_assert_num_queries
):
    base = timezone.now() - timedelta(hours=1)
    comments = [
        factories.CommentFactory(
            issue=task,
            author_user=board_user if i % 2 else None,
            author_agent=None if i % 2 else agent,
            created_at=base + timedelta(minutes=i),
        )
        for i in range(5)
    ]
    factories.CommentFactory(issue=factories.IssueFactory(company=task.company))  # elsewhere
    newest_first = [c.pk for c in reversed(comments)]

    # The request's savepoint and its release, the credential with its user, the user's seats,
    # the company, the task, the page (its authors joined).
    with django_assert_num_queries(7):
        first = board.get(comments_url(task), {"limit": 3})
    second = board.get(
        comments_url(task), {"limit": 3, "cursor": first.json()["meta"]["nextCursor"]}
    )

    assert first.status_code == second.status_code == 200, first.json()
    assert [c["id"] for c in first.json()["data"]] == newest_first[:3]
    assert [c["id"] for c in second.json()["data"]] == newest_first[3:]
    assert first.json()["meta"]["hasMore"] is True
    assert (second.json()["meta"]["hasMore"], second.json()["meta"]["nextCursor"]) == (False, None)
    authors = [c["author"] for c in first.json()["data"]]
    assert authors == [f"agent:{agent.pk}", "user:alice", f"agent:{agent.pk}"]


def test_another_companys_task_is_404_either_way(board, other_board, company, other_company, task):
    theirs = factories.IssueFactory(company=other_company)

    answers = [
        other_board.get(comments_url(task)),
        other_board.post(comments_url(task), {"text": "hi"}, format="json"),
        other_board.get(comments_url(task, company=other_company)),
        other_board.post(comments_url(task, company=other_company), {"text": "hi"}, format="json"),
        board.get(comments_url(theirs, company=company)),
        board.post(comments_url(theirs, company=company), {"text": "hi"}, format="json"),
        board.get(f"/v1/companies/{company.pk}/issues/ACM-999/comments"),
    ]

    for response in answers:
        assert response.status_code == 404, response.json()
        assert response.json()["error"]["code"] == "not_found"
    assert not Comment.objects.exists()


def test_the_agent_running_the_task_comments_from_its_run_without_a_header(
    agent_client, company, agent
):
    """003 names no run header: the claim's run is the one the comment comes from (on /api it
    would be a 401 `run_id_required` without `X-Paperclip-Run-Id`)."""
    issue = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    run = agent_client.post(
        f"/v1/companies/{company.pk}/issues/{issue.pk}/runs", {}, format="json"
    ).json()["data"]

    response = agent_client.post(comments_url(issue), {"text": "Halfway there"}, format="json")

    assert response.status_code == 201, response.json()
    assert (response.json()["data"]["author"], response.json()["data"]["runId"]) == (
        f"agent:{agent.pk}",
        run["id"],
    )
    issue.refresh_from_db()
    assert (issue.status, issue.checkout_run_id) == (Status.IN_PROGRESS, run["id"])


def test_another_agents_run_does_not_speak_for_a_comment(board, company, agent):
    """Only the caller's own live run is implied: a peer commenting on a running task of
    someone else comments as itself, from no run."""
    peer = factories.AgentFactory(company=company, name="Peer")
    issue = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    key = factories.AgentApiKeyFactory(agent=agent).token

    client_for(key).post(f"/v1/companies/{company.pk}/issues/{issue.pk}/runs", {}, format="json")
    peer_client = client_for(factories.AgentApiKeyFactory(agent=peer).token)

    response = peer_client.post(comments_url(issue), {"text": "Need a hand?"}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["data"]["runId"] is None
