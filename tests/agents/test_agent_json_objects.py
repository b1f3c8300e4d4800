"""An agent's JSON object fields (`adapterConfig`, `permissions`) take JSON objects: anything else
is a 400 naming the field, on create and on PATCH, never a 500; and nothing changes."""

from __future__ import annotations

import pytest

from agents.models import Agent, HeartbeatRun
from companies.models import ActivityEvent
from tests import factories

pytestmark = pytest.mark.django_db

NOT_OBJECTS = [[1], "s", 5, True, None]
FIELDS = ["adapterConfig", "permissions"]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("value", NOT_OBJECTS)
def test_patching_a_json_object_field_with_a_non_object_is_400_naming_it(
    board, company, field, value
):
    agent = factories.AgentFactory(
        company=company,
        adapter_type=Agent.Adapter.HTTP,
        adapter_config={"url": "https://agent.example.com/wake"},
        permissions={"canCreateAgents": False},
    )

    response = board.patch(f"/api/agents/{agent.pk}", {field: value}, format="json")

    assert response.status_code == 400, response.content
    message = "This field may not be null." if value is None else "Must be a JSON object."
    assert response.json() == {
        "error": "Validation failed",
        "code": "validation_error",
        "details": {field: [message]},
    }
    agent.refresh_from_db()
    assert (agent.adapter_config, agent.permissions) == (
        {"url": "https://agent.example.com/wake"},
        {"canCreateAgents": False},
    )
    assert not ActivityEvent.objects.filter(action="agent.updated").exists()


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("value", [[1], "s"])
def test_hiring_with_a_non_object_json_field_is_400_naming_it(board, company, field, value):
    response = board.post(
        f"/api/companies/{company.pk}/agents",
        {"name": "Shapeless", "adapterType": "http", field: value},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert response.json() == {
        "error": "Validation failed",
        "code": "validation_error",
        "details": {field: ["Must be a JSON object."]},
    }
    assert not Agent.objects.filter(name="Shapeless").exists()


def test_objects_are_accepted_and_omitted_ones_default_to_empty(board, company):
    response = board.post(
        f"/api/companies/{company.pk}/agents",
        {"name": "Shaped", "adapterConfig": {"command": "run", "args": ["--fast"]}},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert (response.json()["adapterConfig"], response.json()["permissions"]) == (
        {"command": "run", "args": ["--fast"]},
        {},
    )
    agent = Agent.objects.get(name="Shaped")
    patched = board.patch(
        f"/api/agents/{agent.pk}", {"permissions": {"canCreateAgents": True}}, format="json"
    )
    assert patched.status_code == 200, patched.content
    agent.refresh_from_db()
    assert (agent.adapter_config, agent.permissions) == (
        {"command": "run", "args": ["--fast"]},
        {"canCreateAgents": True},
    )
    assert not HeartbeatRun.objects.exists()
