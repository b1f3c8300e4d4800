"""Approving a `hire_agent` approval hires the agent its payload describes, as Paperclip does: in
the decision's transaction, through the agent service (its own activity row), once; the approval
records the hire as `payload.agentId`. A payload that cannot make an agent refuses the decision
(422 naming the payload field) and nothing is decided."""

from __future__ import annotations

import pytest

from agents.models import Agent, HeartbeatRun
from companies.models import ActivityEvent
from issues.models import Approval
from tests import factories
from tests.wire import wire

pytestmark = pytest.mark.django_db

INVALID = {"error": "The hire_agent payload cannot make an agent", "code": "invalid_hire_payload"}


@pytest.fixture
def manager(company):
    return factories.AgentFactory(company=company, name="Chief", role="cto")


def hire_request(company, agent, payload: dict) -> Approval:
    return Approval.objects.create(
        company=company, type="hire_agent", payload=payload, requested_by_agent=agent
    )


def approve(board, approval: Approval):
    return board.post(f"/api/approvals/{approval.pk}/approve", {}, format="json")


def refused(response, fields: str, details: dict) -> None:
    assert response.status_code == 422, response.content
    assert response.json() == {
        "error": f"{INVALID['error']} ({fields})",
        "code": INVALID["code"],
        "details": {"payload": details},
    }


def test_approving_a_hire_creates_the_agent_from_the_payload_and_records_it(
    board, board_user, company, agent, manager
):
    payload = {
        "name": "Designer",
        "role": "designer",
        "title": "Product designer",
        "reportsTo": manager.pk,
        "adapterType": "http",
        "adapterConfig": {"url": "https://designer.example.com/wake"},
        "budgetMonthlyCents": 5000,
        "reason": "We need someone for the UI",  # the requester's note: kept, not an agent field
    }
    approval = hire_request(company, agent, payload)

    response = approve(board, approval)

    assert response.status_code == 200, response.content
    hired = Agent.objects.get(company=company, name="Designer")
    assert response.json()["status"] == "approved"
    assert response.json()["payload"] == payload | {
        "reportsTo": wire(manager),
        "agentId": wire(hired),
    }
    assert (
        hired.role,
        hired.title,
        hired.reports_to,
        hired.adapter_type,
        hired.adapter_config,
        hired.budget_monthly_cents,
        hired.status,
    ) == (
        "designer",
        "Product designer",
        manager,
        "http",
        {"url": "https://designer.example.com/wake"},
        5000,
        "active",
    )
    approval.refresh_from_db()
    assert (approval.status, approval.payload["agentId"]) == ("approved", hired.pk)
    created = ActivityEvent.objects.get(action="agent.created")
    assert (created.entity_id, created.actor_type, created.actor_id) == (
        hired.pk,
        "user",
        board_user.pk,
    )
    decided = ActivityEvent.objects.get(action="approval.approved")
    assert decided.details["agentId"] == hired.pk
    # The requester is woken with the decision, as for any approval.
    run = HeartbeatRun.objects.get(agent=agent)
    assert (run.context["approvalId"], run.context["approvalStatus"]) == (approval.pk, "approved")


def test_the_hired_agent_is_readable_over_the_api(board, company, agent):
    approval = hire_request(company, agent, {"name": "Writer"})

    agent_id = approve(board, approval).json()["payload"]["agentId"]

    response = board.get(f"/api/agents/{agent_id}")
    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["status"]) == ("Writer", "active")


def test_approving_twice_hires_once(board, company, agent):
    approval = hire_request(company, agent, {"name": "Designer"})
    first = approve(board, approval)
    events = ActivityEvent.objects.count()

    again = approve(board, approval)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert Agent.objects.filter(company=company, name="Designer").count() == 1
    assert ActivityEvent.objects.count() == events


@pytest.mark.parametrize(
    ("payload", "fields", "details"),
    [
        ({}, "payload.name", {"name": ["A hire needs the agent's name."]}),
        ({"name": "   "}, "payload.name", {"name": ["A hire needs the agent's name."]}),
        ({"name": 7}, "payload.name", {"name": ["Must be a string."]}),
        (
            {"name": "Designer", "reportsTo": "agt_00000000000000000000000000"},
            "payload.reportsTo",
            {"reportsTo": ["Names no agent of this company."]},
        ),
        (
            {"name": "Designer", "budgetMonthlyCents": -5},
            "payload.budgetMonthlyCents",
            {"budgetMonthlyCents": ["Ensure this value is greater than or equal to 0."]},
        ),
        (
            {"name": "Designer", "adapterConfig": {"url": "http://169.254.169.254/"}},
            "payload.adapterConfig",
            {
                "adapterConfig": {
                    "url": ["169.254.169.254 is a link-local address; it is never allowed."]
                }
            },
        ),
    ],
    ids=["no-name", "blank-name", "name-not-text", "bad-reports-to", "negative-budget", "metadata"],
)
def test_a_payload_that_cannot_make_an_agent_is_422_and_nothing_is_decided(
    board, company, agent, payload, fields, details
):
    approval = hire_request(company, agent, payload)
    agents = set(Agent.objects.values_list("pk", flat=True))

    response = approve(board, approval)

    refused(response, fields, details)
    approval.refresh_from_db()
    assert (approval.status, approval.decided_at, approval.payload) == ("pending", None, payload)
    assert set(Agent.objects.values_list("pk", flat=True)) == agents
    assert not ActivityEvent.objects.exists()
    assert not HeartbeatRun.objects.exists()


def test_a_name_taken_by_an_agent_is_422_in_any_case(board, company, agent):
    approval = hire_request(company, agent, {"name": "builder"})  # `agent` is "Builder"

    response = approve(board, approval)

    refused(response, "payload.name", {"name": ["An agent with this name already exists."]})
    approval.refresh_from_db()
    assert approval.status == "pending"
    assert Agent.objects.filter(name__iexact="builder").count() == 1


def test_a_manager_from_another_company_is_not_a_manager(board, company, agent, other_agent):
    approval = hire_request(company, agent, {"name": "Designer", "reportsTo": other_agent.pk})

    response = approve(board, approval)

    refused(response, "payload.reportsTo", {"reportsTo": ["Names no agent of this company."]})
    assert not Agent.objects.filter(name="Designer").exists()


def test_the_refused_hire_can_be_fixed_by_revision_and_then_approved(
    board, agent_client, company, agent
):
    approval = hire_request(company, agent, {"title": "Designer"})
    refused(approve(board, approval), "payload.name", {"name": ["A hire needs the agent's name."]})
    assert board.post(f"/api/approvals/{approval.pk}/request-revision", {}).status_code == 200

    resubmitted = agent_client.post(
        f"/api/approvals/{approval.pk}/resubmit",
        {"payload": {"name": "Designer", "title": "Designer"}},
        format="json",
    )
    assert resubmitted.status_code == 200, resubmitted.content

    response = approve(board, approval)
    assert response.status_code == 200, response.content
    assert Agent.objects.get(name="Designer").title == "Designer"


def test_rejecting_a_hire_hires_nobody(board, company, agent):
    approval = hire_request(company, agent, {"name": "Designer"})

    response = board.post(f"/api/approvals/{approval.pk}/reject", {}, format="json")

    assert response.status_code == 200, response.content
    assert "agentId" not in response.json()["payload"]
    assert not Agent.objects.filter(name="Designer").exists()


# -- when the hire is asked for ------------------------------------------------------------------


def test_a_hire_request_with_an_unusable_field_is_400_naming_it(agent_client, company):
    response = agent_client.post(
        f"/api/companies/{company.pk}/approvals",
        {"type": "hire_agent", "payload": {"name": "Designer", "role": "wizard"}},
        format="json",
    )

    assert response.status_code == 400, response.content
    body = response.json()
    assert (body["code"], list(body["details"]["payload"])) == ("validation_error", ["role"])
    assert not Approval.objects.exists()


def test_a_hire_request_may_leave_the_name_for_a_revision(agent_client, company):
    response = agent_client.post(
        f"/api/companies/{company.pk}/approvals",
        {"type": "hire_agent", "payload": {"title": "Designer"}},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert Approval.objects.get().payload == {"title": "Designer"}


@pytest.mark.parametrize("key", ["command", "args", "cwd", "env"])
def test_an_agent_may_not_ask_for_a_hire_that_runs_a_command(agent_client, board, company, key):
    """Where commands run is the board's choice alone (the process adapter)."""
    config = {"command": "/bin/true", "args": [], "cwd": "/tmp", "env": {"A": "b"}}
    payload = {"name": "Runner", "adapterType": "process", "adapterConfig": {key: config[key]}}

    asked = agent_client.post(
        f"/api/companies/{company.pk}/approvals",
        {"type": "hire_agent", "payload": payload},
        format="json",
    )
    by_board = board.post(
        f"/api/companies/{company.pk}/approvals",
        {"type": "hire_agent", "payload": payload | {"adapterConfig": config}},
        format="json",
    )

    assert asked.status_code == 403, asked.json()
    assert asked.json()["details"] == {"adapterConfig": [key]}
    assert by_board.status_code == 201, by_board.json()
    assert Approval.objects.count() == 1
