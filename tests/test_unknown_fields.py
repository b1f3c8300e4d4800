"""A field the endpoint does not have is a 400 naming it, never silently dropped.

Found by fuzzing: `assignedAgentId` (for `assigneeAgentId`) created an unassigned issue, 201.
The shared serializer bases refuse unknown fields once for every endpoint; a read-only field the
serializer has (echoed back from a read, as Paperclip's clients sometimes do on PATCH) is
ignored. Names Paperclip's own clients send are understood: `decisionNote` on decisions.
"""

from __future__ import annotations

import pytest

from companies.models import ActivityEvent
from issues.models import Approval, Issue
from tests import factories

pytestmark = pytest.mark.django_db

UNKNOWN = ["Unknown field."]


def validation_error(details: dict) -> dict:
    return {"error": "Validation failed", "code": "validation_error", "details": details}


@pytest.fixture
def issue(company):
    return factories.IssueFactory(company=company, status="todo")


@pytest.fixture
def approval(company, agent):
    return Approval.objects.create(
        company=company, type="hire_agent", payload={"name": "Designer"}, requested_by_agent=agent
    )


# -- unknown fields --------------------------------------------------------------------------


def test_an_unknown_field_is_400_naming_it_and_creates_nothing(board, company, agent):
    response = board.post(
        f"/api/companies/{company.pk}/issues",
        {"title": "Ship", "assignedAgentId": agent.pk},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == validation_error({"assignedAgentId": UNKNOWN})
    assert not Issue.objects.exists()
    assert not ActivityEvent.objects.exists()


def test_unknown_fields_are_named_with_the_other_bad_fields(board, company):
    response = board.post(
        f"/api/companies/{company.pk}/issues",
        {"priority": "urgent", "assignedAgentId": "x", "labels": []},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == validation_error(
        {
            "assignedAgentId": UNKNOWN,
            "labels": UNKNOWN,
            "title": ["This field is required."],
            "priority": ['"urgent" is not a valid choice.'],
        }
    )
    assert not Issue.objects.exists()


def test_an_unknown_field_on_a_verb_is_400(board, issue):
    response = board.patch(
        f"/api/issues/{issue.pk}", {"title": "Renamed", "reopened": True}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == validation_error({"reopened": UNKNOWN})
    issue.refresh_from_db()
    assert issue.title != "Renamed"


def test_a_field_refused_on_purpose_keeps_its_own_message(board, agent, issue):
    response = board.post(
        f"/api/issues/{issue.pk}/checkout", {"agentId": agent.pk, "runId": "x"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == validation_error(
        {"runId": ["Not accepted in the body: send X-Paperclip-Run-Id."]}
    )
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id) == ("todo", None)


def test_read_only_fields_echoed_back_on_patch_are_ignored(board, agent):
    read = board.get(f"/api/agents/{agent.pk}").json()

    response = board.patch(
        f"/api/agents/{agent.pk}",
        {**read, "title": "Lead builder", "status": "terminated", "id": "agt_other"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json() | {"updatedAt": None} == read | {
        "title": "Lead builder",
        "updatedAt": None,
    }
    agent.refresh_from_db()
    assert (agent.title, agent.status) == ("Lead builder", read["status"])


# -- the names Paperclip's clients send ----------------------------------------------------


def test_approval_decision_accepts_paperclips_decision_note(board, approval):
    response = board.post(
        f"/api/approvals/{approval.pk}/approve", {"decisionNote": "Go ahead"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["decisionNote"]) == ("approved", "Go ahead")
    approval.refresh_from_db()
    assert (approval.status, approval.decision_note) == ("approved", "Go ahead")


def test_approval_decision_accepts_a_null_decision_note(board, approval):
    response = board.post(
        f"/api/approvals/{approval.pk}/reject", {"decisionNote": None}, format="json"
    )

    assert response.status_code == 200, response.json()
    approval.refresh_from_db()
    assert (approval.status, approval.decision_note) == ("rejected", "")


def test_approval_decision_with_both_note_names_is_400(board, approval):
    response = board.post(
        f"/api/approvals/{approval.pk}/approve",
        {"note": "Yes", "decisionNote": "No"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == validation_error(
        {"decisionNote": ["Send note or decisionNote, not both."]}
    )
    approval.refresh_from_db()
    assert (approval.status, approval.decision_note) == ("pending", "")
