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


@pytest.mark.parametrize("rows", [3, 30])
def test_the_inbox_sends_two_statements_whatever_its_size(working, company, agent, rows):
    labels = [factories.LabelFactory(company=company) for _ in range(2)]
    for _ in range(rows):
        issue = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
        issue.labels.set(labels)
        issue.dependencies.set([factories.IssueFactory(company=company)])
    url = f"/api/companies/{company.pk}/issues?assigneeAgentId={agent.pk}&status=todo,in_progress"

    response, sent = statements(working, "get", url)

    assert response.status_code == 200
    assert len(response.json()) == rows
    assert all(len(row["labels"]) == 2 and row["dependencyIds"] for row in response.json())
    # The company the URL names, then one page of issues with their labels and dependencies.
    assert len(sent) == 2, sent


def test_inbox_lite_sends_one_statement(working, company, agent):
    for _ in range(5):
        factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)

    response, sent = statements(working, "get", "/api/agents/me/inbox-lite")

    assert response.status_code == 200 and len(response.json()) == 5
    assert len(sent) == 1, sent
