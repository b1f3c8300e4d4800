"""Every id the API reads may come in either wire form: `prefix_<ulid>` or the UUID of the same
128 bits (DESIGN §5; Paperclip's own CLI sends UUIDs). One parsing place (`paperclip.ids`);
both forms find the same object, in paths, bodies, query filters and the run header."""

from __future__ import annotations

import pytest
from django.utils import timezone

from agents.models import HeartbeatRun
from issues.models import Issue
from paperclip.ids import as_uuid, parse_id
from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(agent):
    return factories.AgentApiKeyFactory(agent=agent).token


def test_the_two_forms_are_one_id():
    stored = "iss_01m8rd9461psyv1mhrdaj30j6k"
    uuid = as_uuid(stored)

    assert uuid == "01a230d4-90c1-b67d-b0d2-386aa43048d3"
    assert parse_id(uuid, "iss") == parse_id(uuid.upper(), "iss") == stored
    assert parse_id(stored, "iss") == stored
    assert parse_id(stored, "agt") is None  # another kind of object
    assert parse_id("iss_nope", "iss") is None


@pytest.mark.parametrize(
    "path",
    [
        "/api/issues/{issue}",
        "/api/agents/{agent}",
        "/api/companies/{company}",
        "/api/companies/{company}/issues",
        "/api/issues/{issue}/comments",
    ],
)
def test_a_path_id_in_uuid_form_finds_the_same_object(board, company, agent, path):
    issue = factories.IssueFactory(company=company)
    ids = {"issue": issue.pk, "agent": agent.pk, "company": company.pk}

    by_prefix = board.get(path.format(**ids))
    by_uuid = board.get(path.format(**{name: as_uuid(pk) for name, pk in ids.items()}))

    assert by_prefix.status_code == by_uuid.status_code == 200
    assert by_uuid.json() == by_prefix.json()


def test_a_uuid_of_another_companys_issue_is_404_like_a_missing_one(other_client, company):
    issue = factories.IssueFactory(company=company)

    response = other_client.get(f"/api/issues/{as_uuid(issue.pk)}")

    assert response.status_code == 404


def test_create_with_a_uuid_assignee_assigns_that_agent(board, company, agent):
    response = board.post(
        f"/api/companies/{company.pk}/issues",
        {"title": "Via the CLI", "assigneeAgentId": as_uuid(agent.pk)},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert Issue.objects.get(pk=response.json()["id"]).assignee_agent_id == agent.pk


def test_an_agent_checks_out_naming_itself_and_its_run_by_uuid(key, agent, company):
    issue = factories.IssueFactory(company=company, status="todo")
    run = factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )
    client = client_for(key, run_id=as_uuid(run.pk))

    response = client.post(
        f"/api/issues/{as_uuid(issue.pk)}/checkout",
        {"agentId": as_uuid(agent.pk), "expectedStatuses": ["todo"]},
        format="json",
    )

    assert response.status_code == 200, response.json()
    issue.refresh_from_db()
    assert (issue.status, issue.checkout_run_id) == ("in_progress", run.pk)


def test_a_document_is_updated_with_its_base_revision_as_a_uuid(board, company):
    issue = factories.IssueFactory(company=company)
    url = f"/api/issues/{issue.pk}/documents/plan"
    created = board.put(url, {"body": "v1"}, format="json").json()

    response = board.put(
        url, {"body": "v2", "baseRevisionId": as_uuid(created["latestRevisionId"])}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["body"] == "v2"


def test_list_filters_take_uuids(board, company, agent):
    mine = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)
    factories.IssueFactory(company=company, status="todo")

    response = board.get(
        f"/api/companies/{company.pk}/issues", {"assigneeAgentId": as_uuid(agent.pk)}
    )
    malformed = board.get(f"/api/companies/{company.pk}/issues", {"assigneeAgentId": "nope"})

    assert [row["id"] for row in response.json()] == [mine.pk]
    assert malformed.json() == []  # names no agent: not "unassigned"


def test_comments_page_after_a_comment_named_by_uuid(board, company):
    issue = factories.IssueFactory(company=company)
    first, second = (
        board.post(f"/api/issues/{issue.pk}/comments", {"body": b}, format="json").json()
        for b in ("one", "two")
    )

    response = board.get(
        f"/api/issues/{issue.pk}/comments", {"after": as_uuid(first["id"]), "order": "asc"}
    )

    assert [row["id"] for row in response.json()] == [second["id"]]
