"""Statement budgets of the two endpoints agents hit all day (issue 15): checkout and the
inbox. Counted as PostgreSQL sees them, less the savepoints of the test's own transaction; the
agent's key is already trusted (`PAPERCLIP_AUTH_CACHE_SECONDS`), as it is on every request
but the first of each period."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import HeartbeatRun
from companies.models import ActivityEvent
from issues.models import Event, Status
from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def statements(client, method: str, url: str, **kwargs) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(url, **kwargs)
    return response, [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]


@pytest.fixture
def working(agent):
    """The agent's client, speaking for a live run, its key already read once."""
    run = factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )
    client = client_for(factories.AgentApiKeyFactory(agent=agent).token, run_id=run.pk)
    assert client.get("/api/agents/me").status_code == 200
    return client


def test_a_checkout_that_wins_sends_five_statements(working, company, agent):
    project = factories.ProjectFactory(company=company)
    issue = factories.IssueFactory(company=company, status=Status.TODO, project=project)
    issue.labels.set([factories.LabelFactory(company=company)])
    issue.dependencies.set([factories.IssueFactory(company=company, status=Status.DONE)])

    response, sent = statements(working, "post", f"/api/issues/{issue.pk}/checkout", data={},
                                format="json")  # fmt: skip

    assert response.status_code == 200, response.json()
    assert len(response.json()["labels"]) == 1 and len(response.json()["dependencyIds"]) == 1
    # The caller's run, the issue's row (locked), the conditional UPDATE answering the issue
    # with its labels and dependencies, the activity row, the event.
    assert [sql.split()[0] for sql in sent] == ["SELECT", "SELECT", "UPDATE", "INSERT", "INSERT"]
    assert ActivityEvent.objects.filter(issue_id=issue.pk, action="issue.checked_out").exists()
    assert Event.objects.filter(type="issue.started").count() == 1


def inbox_url(company, agent) -> str:
    return f"/api/companies/{company.pk}/issues?assigneeAgentId={agent.pk}&status=todo,in_progress"


@pytest.mark.parametrize("rows", [3, 30])
def test_the_inbox_sends_three_statements_whatever_its_size(working, company, agent, rows):
    labels = [factories.LabelFactory(company=company) for _ in range(2)]
    for _ in range(rows):
        issue = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
        issue.labels.set(labels)
        issue.dependencies.set([factories.IssueFactory(company=company)])

    response, sent = statements(working, "get", inbox_url(company, agent))

    assert response.status_code == 200
    assert len(response.json()) == rows
    assert all(len(row["labels"]) == 2 and row["dependencyIds"] for row in response.json())
    # The company the URL names, the list's version (its ETag), then one page of issues with
    # their labels and dependencies.
    assert len(sent) == 3, sent


def test_a_repeated_inbox_is_304_without_reading_the_page(working, company, agent):
    for _ in range(5):
        factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    first = working.get(inbox_url(company, agent))

    again, sent = statements(
        working, "get", inbox_url(company, agent), HTTP_IF_NONE_MATCH=first["ETag"]
    )

    assert again.status_code == 304 and again["ETag"] == first["ETag"]
    assert len(sent) == 2, sent  # the company and the version: no page of issues
    assert "issues_issue_labels" not in " ".join(sent)


def renamed_label(company, agent, board):
    label = factories.LabelFactory(company=company, name="ux")
    factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent).labels.add(
        label
    )
    yield
    assert (
        board.patch(f"/api/labels/{label.pk}", {"name": "design"}, format="json").status_code == 200
    )


def other_issue_done(company, agent, board):
    issue = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    yield
    assert (
        board.patch(f"/api/issues/{issue.pk}", {"status": "cancelled"}, format="json").status_code
        == 200
    )


def dependency_deleted(company, agent, board):
    needed = factories.IssueFactory(company=company, status=Status.DONE)
    factories.IssueFactory(
        company=company, status=Status.TODO, assignee_agent=agent
    ).dependencies.add(needed)
    yield
    assert board.delete(f"/api/issues/{needed.pk}").status_code == 204


def parent_deleted(company, agent, board):
    parent = factories.IssueFactory(company=company, status=Status.DONE)
    factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent, parent=parent)
    yield
    assert board.delete(f"/api/issues/{parent.pk}").status_code == 204


def project_deleted(company, agent, board):
    project = factories.ProjectFactory(company=company)
    factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent,
                           project=project)  # fmt: skip
    yield
    assert board.delete(f"/api/projects/{project.pk}").status_code == 204


def issue_assigned(company, agent, board):
    issue = factories.IssueFactory(company=company, status=Status.BACKLOG)
    yield
    body = {"assigneeAgentId": agent.pk, "status": "todo"}
    assert board.patch(f"/api/issues/{issue.pk}", body, format="json").status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        renamed_label,
        other_issue_done,
        dependency_deleted,
        parent_deleted,
        project_deleted,
        issue_assigned,
    ],
)
def test_any_change_to_what_the_inbox_shows_changes_its_tag(working, company, agent, board, change):
    factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    steps = change(company, agent, board)
    next(steps)
    before = working.get(inbox_url(company, agent))

    next(steps, None)
    after = working.get(inbox_url(company, agent), HTTP_IF_NONE_MATCH=before["ETag"])

    assert after.status_code == 200
    assert after["ETag"] != before["ETag"]
    assert after.json() != before.json()


def test_inbox_lite_sends_one_statement(working, company, agent):
    for _ in range(5):
        factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)

    response, sent = statements(working, "get", "/api/agents/me/inbox-lite")

    assert response.status_code == 200 and len(response.json()) == 5
    assert len(sent) == 1, sent
