"""One clock per row: whatever creates an object, its `updatedAt` is exactly its `createdAt`; a
later change moves `updatedAt` forward and never `createdAt`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent, Team
from issues.models import Approval, Comment, Document, Goal, Issue, Project
from tests import factories
from tests.wire import stored

pytestmark = pytest.mark.django_db


def same_moment(body: dict, row) -> None:
    """The answer and the stored row both say created == updated, and agree with each other."""
    assert body["updatedAt"] == body["createdAt"], body
    row.refresh_from_db()
    assert row.updated_at == row.created_at
    assert body["createdAt"].startswith(row.created_at.strftime("%Y-%m-%dT%H:%M:%S"))


def test_a_new_issue_is_updated_when_it_is_created(board, company):
    response = board.post(f"/api/companies/{company.pk}/issues", {"title": "Ship"}, format="json")

    assert response.status_code == 201, response.content
    same_moment(response.json(), Issue.objects.get(pk=stored(response.json()["id"], Issue)))


def test_a_new_comment_document_agent_and_approval_each_have_one_timestamp(
    board, agent_client, company
):
    issue = factories.IssueFactory(company=company, status="todo")
    made = {
        Comment: board.post(f"/api/issues/{issue.pk}/comments", {"body": "Hi"}, format="json"),
        Document: board.put(f"/api/issues/{issue.pk}/documents/plan", {"body": "#"}, format="json"),
        Agent: board.post(f"/api/companies/{company.pk}/agents", {"name": "New"}, format="json"),
        Approval: agent_client.post(
            f"/api/companies/{company.pk}/approvals",
            {"type": "approve_ceo_strategy", "payload": {}},
            format="json",
        ),
        Goal: board.post(f"/api/companies/{company.pk}/goals", {"title": "Grow"}, format="json"),
        Project: board.post(f"/api/companies/{company.pk}/projects", {"name": "P"}, format="json"),
    }

    for model, response in made.items():
        assert response.status_code == 201, (model, response.content)
        same_moment(response.json(), model.objects.get(pk=stored(response.json()["id"], model)))


def test_a_team_made_by_the_service_layer_has_one_timestamp(company):
    team = Team.objects.create(company=company, name="Core")

    assert team.updated_at == team.created_at


def test_a_change_moves_updated_at_and_keeps_created_at(board, company, agent):
    issue = factories.IssueFactory(company=company)
    agent_created, issue_created = agent.created_at, issue.created_at

    assert (
        board.patch(f"/api/agents/{agent.pk}", {"title": "Lead"}, format="json").status_code == 200
    )
    assert (
        board.patch(f"/api/issues/{issue.pk}", {"title": "New"}, format="json").status_code == 200
    )

    agent.refresh_from_db()
    issue.refresh_from_db()
    assert (agent.created_at, issue.created_at) == (agent_created, issue_created)
    assert agent.updated_at > agent.created_at
    assert issue.updated_at > issue.created_at


def test_a_time_given_for_one_is_used_for_both(company):
    earlier = timezone.now() - timedelta(hours=3)

    issue = factories.IssueFactory(company=company, updated_at=earlier)
    comment = factories.CommentFactory(issue=issue, created_at=earlier)

    assert (issue.created_at, issue.updated_at) == (earlier, earlier)
    assert (comment.created_at, comment.updated_at) == (earlier, earlier)


def test_a_new_company_has_one_timestamp(admin_client):
    response = admin_client.post("/api/companies", {"name": "Clockwork"}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["createdAt"] == response.json()["updatedAt"]


def test_a_second_save_of_the_creating_instance_moves_updated_at(company):
    agent = factories.AgentFactory(company=company)
    created = agent.created_at

    agent.title = "Lead"
    agent.save()

    agent.refresh_from_db()
    assert agent.created_at == created
    assert agent.updated_at > created
