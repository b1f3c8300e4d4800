"""What a waking agent reads first (the heartbeat protocol's steps 3 and 6).

`GET /api/agents/me/inbox-lite`: the caller's todo, in_progress and blocked issues, by priority
then most recently updated, each with the run working on it (null unless that run is live).
`GET /api/issues/{id}/heartbeat-context`: the issue compactly, its ancestors, where its comments
stand, and the comment that woke the agent.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from issues.models import Issue
from tests import factories
from tests.conftest import client_for
from tests.factories import live_run
from tests.wire import wire

pytestmark = pytest.mark.django_db

INBOX = "/api/agents/me/inbox-lite"
INBOX_FIELDS = {
    "id",
    "identifier",
    "title",
    "status",
    "priority",
    "parentId",
    "projectId",
    "goalId",
    "updatedAt",
    "activeRun",
}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def ago(minutes: int):
    return timezone.now() - timedelta(minutes=minutes)


@pytest.fixture
def client(agent):
    return client_for(factories.AgentApiKeyFactory(agent=agent).token)


# -- inbox-lite ---------------------------------------------------------------------------------


def test_inbox_lists_the_agents_open_work_by_priority_then_most_recently_updated(
    client, company, agent
):
    def mine(title, status, priority, updated):
        return factories.IssueFactory(
            company=company,
            title=title,
            status=status,
            priority=priority,
            assignee_agent=agent,
            updated_at=ago(updated),
        )

    low_todo = mine("Low todo", "todo", 3, 1)
    high_blocked = mine("High blocked", "blocked", 1, 30)
    high_todo_recent = mine("High todo, recent", "todo", 1, 5)
    critical = mine("Critical in progress", "in_progress", 0, 60)
    # Not in the inbox: not open for work, or not the agent's.
    mine("Backlog", "backlog", 0, 1)
    mine("In review", "in_review", 0, 1)
    mine("Done", "done", 0, 1)
    mine("Cancelled", "cancelled", 0, 1)
    peer = factories.AgentFactory(company=company, name="Rival")
    factories.IssueFactory(company=company, status="todo", priority=0, assignee_agent=peer)
    factories.IssueFactory(company=company, status="todo", priority=0)  # unassigned

    response = client.get(INBOX)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert [item["id"] for item in body] == wire(
        [critical, high_todo_recent, high_blocked, low_todo]
    )
    assert [(item["status"], item["priority"]) for item in body] == [
        ("in_progress", "critical"),
        ("todo", "high"),
        ("blocked", "high"),
        ("todo", "low"),
    ]
    assert all(set(item) == INBOX_FIELDS for item in body)


def test_inbox_item_shows_the_live_run_holding_it(client, company, agent):
    run = live_run(agent)
    parent = factories.IssueFactory(company=company, status="todo")
    project = factories.ProjectFactory(company=company)
    goal = factories.GoalFactory(company=company)
    issue = factories.IssueFactory(
        company=company,
        title="Wire the parser",
        status="in_progress",
        assignee_agent=agent,
        checkout_run=run,
        parent=parent,
        project=project,
        goal=goal,
    )

    [item] = client.get(INBOX).json()

    assert item == {
        "id": wire(issue),
        "identifier": issue.identifier,
        "title": "Wire the parser",
        "status": "in_progress",
        "priority": "medium",
        "parentId": wire(parent),
        "projectId": wire(project),
        "goalId": wire(goal),
        "updatedAt": item["updatedAt"],
        "activeRun": {
            "id": wire(run),
            "agentId": wire(agent),
            "status": "running",
            "leaseExpiresAt": item["activeRun"]["leaseExpiresAt"],
            "isLive": True,
        },
    }
    run.refresh_from_db()
    assert item["activeRun"]["leaseExpiresAt"].startswith(
        run.lease_expires_at.strftime("%Y-%m-%dT%H:%M:%S")
    )


@pytest.mark.parametrize("how", ["succeeded", "timed_out", "lease_expired"])
def test_inbox_active_run_is_null_when_the_lock_holder_is_not_live(client, company, agent, how):
    if how == "lease_expired":
        holder = live_run(agent, lease_expires_at=timezone.now() - timedelta(seconds=1))
    else:
        holder = factories.HeartbeatRunFactory(agent=agent, status=how, finished_at=timezone.now())
    issue = factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=agent, checkout_run=holder
    )

    [item] = client.get(INBOX).json()

    assert (item["id"], item["status"], item["activeRun"]) == (wire(issue), "in_progress", None)


def test_inbox_active_run_is_null_for_unlocked_issues(client, company, agent):
    factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    [item] = client.get(INBOX).json()

    assert item["activeRun"] is None


def test_inbox_after_the_run_finishes_shows_no_active_run(company, agent):
    run = live_run(agent)
    client = client_for(factories.AgentApiKeyFactory(agent=agent).token, run_id=run.pk)
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)
    assert client.post(f"/api/issues/{issue.pk}/checkout", {}, format="json").status_code == 200
    assert client.get(INBOX).json()[0]["activeRun"]["id"] == wire(run)
    finished = client.post(
        f"/api/heartbeat-runs/{run.pk}/finish", {"status": "succeeded"}, format="json"
    )
    assert finished.status_code == 200, finished.json()

    [item] = client_for(factories.AgentApiKeyFactory(agent=agent).token).get(INBOX).json()

    assert (item["id"], item["status"], item["activeRun"]) == (wire(issue), "in_progress", None)


def test_inbox_of_an_agent_with_nothing_assigned_is_empty(company, other_client, agent):
    factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = other_client.get(INBOX)

    assert response.status_code == 200
    assert response.json() == []  # another company's agent sees none of it


def test_board_has_no_inbox_403(board):
    response = board.get(INBOX)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_inbox_needs_credentials_401(anon):
    response = anon.get(INBOX)

    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized", "code": "unauthorized"}


def test_inbox_costs_the_same_queries_for_one_issue_or_many(client, company, agent):
    def add_issue():
        factories.IssueFactory(
            company=company,
            status="in_progress",
            assignee_agent=agent,
            checkout_run=live_run(agent),
        )

    add_issue()
    client.get(INBOX)  # warm up: the key's last use is stamped once a minute
    with CaptureQueriesContext(connection) as one:
        assert len(client.get(INBOX).json()) == 1
    for _ in range(5):
        add_issue()

    with CaptureQueriesContext(connection) as six:
        assert len(client.get(INBOX).json()) == 6

    assert len(six.captured_queries) == len(one.captured_queries)


# -- heartbeat-context --------------------------------------------------------------------------


def context_url(issue: Issue, wake_comment_id: str | None = None) -> str:
    url = f"/api/issues/{issue.pk}/heartbeat-context"
    return url + (f"?wakeCommentId={wake_comment_id}" if wake_comment_id else "")


@pytest.fixture
def family(company, agent):
    """grandparent ← parent ← issue, the issue assigned to the agent."""
    project = factories.ProjectFactory(company=company, name="Parser")
    goal = factories.GoalFactory(company=company, title="Ship v1")
    grandparent = factories.IssueFactory(company=company, title="Ship v1", goal=goal)
    parent = factories.IssueFactory(
        company=company, title="Build the parser", parent=grandparent, project=project
    )
    issue = factories.IssueFactory(
        company=company,
        title="Tokenizer",
        description="Split the input into tokens.",
        status="todo",
        priority=1,
        assignee_agent=agent,
        parent=parent,
        project=project,
    )
    return grandparent, parent, issue


def test_heartbeat_context_answers_the_issue_its_ancestors_and_its_comment_cursor(
    client, company, agent, family
):
    grandparent, parent, issue = family
    factories.CommentFactory(issue=issue, created_at=ago(10))
    latest = factories.CommentFactory(issue=issue, body="Please also handle unicode.")
    factories.CommentFactory(issue=parent)  # another issue's comment does not count

    response = client.get(context_url(issue, latest.pk))

    assert response.status_code == 200, response.json()
    body = response.json()
    assert {key: body[key] for key in body if key not in ("updatedAt", "ancestors")} == {
        "id": wire(issue),
        "identifier": issue.identifier,
        "title": "Tokenizer",
        "description": "Split the input into tokens.",
        "status": "todo",
        "priority": "high",
        "assigneeAgentId": wire(agent),
        "checkoutRunId": None,
        "projectId": wire(issue.project_id),
        "goalId": None,
        "parentId": wire(parent),
        "commentCursor": {
            "totalComments": 2,
            "latestCommentId": wire(latest),
            "latestCommentAt": body["commentCursor"]["latestCommentAt"],
        },
        "wakeComment": {
            "id": wire(latest),
            "companyId": wire(company),
            "issueId": wire(issue),
            "authorAgentId": None,
            "authorUserId": None,
            "body": "Please also handle unicode.",
            "runId": None,
            "createdAt": body["wakeComment"]["createdAt"],
            "updatedAt": body["wakeComment"]["updatedAt"],
        },
    }
    assert body["commentCursor"]["latestCommentAt"] == body["wakeComment"]["createdAt"]
    # Nearest first, each with its project and goal.
    assert [(a["id"], a["title"]) for a in body["ancestors"]] == [
        (wire(parent), "Build the parser"),
        (wire(grandparent), "Ship v1"),
    ]
    assert body["ancestors"][0]["project"]["name"] == "Parser"
    assert body["ancestors"][1]["goal"]["title"] == "Ship v1"


def test_heartbeat_context_without_a_wake_comment(client, family):
    *_, issue = family

    response = client.get(context_url(issue))

    assert response.status_code == 200
    body = response.json()
    assert body["wakeComment"] is None
    assert body["commentCursor"] == {
        "totalComments": 0,
        "latestCommentId": None,
        "latestCommentAt": None,
    }


def test_heartbeat_context_ignores_a_wake_comment_of_another_issue(client, family):
    _, parent, issue = family
    elsewhere = factories.CommentFactory(issue=parent)

    response = client.get(context_url(issue, elsewhere.pk))

    assert response.status_code == 200
    assert response.json()["wakeComment"] is None


def test_heartbeat_context_of_an_issue_without_parent_has_no_ancestors(client, company):
    issue = factories.IssueFactory(company=company, status="todo")

    response = client.get(context_url(issue))

    assert response.status_code == 200
    assert response.json()["ancestors"] == []


def test_heartbeat_context_by_identifier(client, family):
    *_, issue = family

    response = client.get(f"/api/issues/{issue.identifier}/heartbeat-context")

    assert response.status_code == 200
    assert response.json()["id"] == wire(issue)


def test_heartbeat_context_of_another_companys_issue_is_404(client, other_company):
    theirs = factories.IssueFactory(company=other_company, status="todo")

    response = client.get(context_url(theirs))

    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "code": "not_found"}


@pytest.mark.parametrize("ref", ["iss_00000000000000000000000000", "ACM-404", "nonsense"])
def test_heartbeat_context_of_an_unknown_issue_is_404(client, company, ref):
    response = client.get(f"/api/issues/{ref}/heartbeat-context")

    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "code": "not_found"}
