"""The agent endpoints: who am I (agents and board users), hiring and editing agents, the org
chart's rules, API keys shown once, and pause / resume / terminate."""

from __future__ import annotations

import hashlib
import re

import pytest

from agents.models import Agent, AgentApiKey
from companies.models import ActivityEvent
from paperclip.ids import new_id
from tests import factories
from tests.conftest import client_for
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db

AGENT_TOKEN = re.compile(r"pcp_[0-9a-f]{48}")
NOT_FOUND = {"error": "Not found", "code": "not_found"}


def assert_validation_error(response, field: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert (body["error"], body["code"]) == ("Validation failed", "validation_error")
    assert list(body["details"]) == [field]
    assert isinstance(body["details"][field], list)
    assert body["details"][field]


def activity_about(agent: Agent) -> list[tuple[str, str, str]]:
    """(action, actor type, actor id) of every row about the agent, oldest first."""
    rows = ActivityEvent.objects.filter(entity_type="agent", entity_id=agent.pk)
    return [(r.action, r.actor_type, r.actor_id) for r in rows.order_by("created_at", "id")]


# -- GET /api/agents/me -------------------------------------------------------------------------


def test_agent_me_answers_the_agent_with_its_chain_of_command(company, agent, agent_client):
    ceo = factories.AgentFactory(company=company, name="Ada", role="ceo", title="Chief")
    cto = factories.AgentFactory(company=company, name="Grace", role="cto", reports_to=ceo)
    agent.reports_to = cto
    agent.save()

    response = agent_client.get("/api/agents/me")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["name"], body["companyId"]) == (
        wire(agent),
        "Builder",
        wire(company),
    )
    assert (body["role"], body["status"], body["reportsTo"]) == ("engineer", "active", wire(cto))
    assert body["chainOfCommand"] == [
        {"id": wire(cto), "name": "Grace", "role": "cto", "title": ""},
        {"id": wire(ceo), "name": "Ada", "role": "ceo", "title": "Chief"},
    ]


def test_agent_me_of_the_top_agent_has_an_empty_chain(agent_client):
    response = agent_client.get("/api/agents/me")

    assert response.status_code == 200
    assert (response.json()["reportsTo"], response.json()["chainOfCommand"]) == (None, [])


def test_agent_me_never_shows_key_material(agent, agent_client):
    response = agent_client.get("/api/agents/me")

    text = response.content.decode()
    for key in AgentApiKey.objects.filter(agent=agent):
        assert key.token_hash not in text
    assert "pcp_" not in text


def test_board_calling_agent_me_gets_403(board):
    response = board.get("/api/agents/me")

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


# -- GET /api/users/me --------------------------------------------------------------------------


def test_users_me_answers_the_board_caller_with_memberships(board_user, board, company):
    globex = factories.CompanyFactory(name="Globex", issue_prefix="GLO")
    factories.MembershipFactory(user=board_user, company=globex, role="viewer")

    response = board.get("/api/users/me")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == wire(board_user)
    assert body["username"] == "alice"
    assert sorted(body["memberships"], key=lambda m: m["companyName"]) == [
        {"companyId": wire(company), "companyName": "Acme Robotics", "role": "owner"},
        {"companyId": wire(globex), "companyName": "Globex", "role": "viewer"},
    ]


def test_agent_calling_users_me_gets_403(agent_client):
    response = agent_client.get("/api/users/me")

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


# -- hiring agents ------------------------------------------------------------------------------


def test_board_creates_an_agent(board, board_user, company, agent):
    response = board.post(
        f"/api/companies/{company.pk}/agents",
        {"name": "Designer", "role": "designer", "title": "UI", "reportsTo": agent.pk},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("companyId", "name", "role", "title", "reportsTo", "status")} == {
        "companyId": wire(company),
        "name": "Designer",
        "role": "designer",
        "title": "UI",
        "reportsTo": wire(agent),
        "status": "active",
    }
    hired = Agent.objects.get(pk=stored(body["id"], Agent))
    assert body["id"] == wire(hired)
    assert (hired.company_id, hired.name, hired.reports_to_id) == (company.pk, "Designer", agent.pk)
    assert activity_about(hired) == [("agent.created", "user", board_user.pk)]


def test_new_agent_defaults_to_an_active_general_agent(board, company):
    response = board.post(f"/api/companies/{company.pk}/agents", {"name": "Plain"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["role"], body["status"], body["reportsTo"]) == ("general", "active", None)


def test_created_agent_appears_in_the_companys_agent_list(board, company, agent):
    board.post(f"/api/companies/{company.pk}/agents", {"name": "Anvil"}, format="json")

    response = board.get(f"/api/companies/{company.pk}/agents")

    assert response.status_code == 200
    assert [row["name"] for row in response.json()] == ["Anvil", "Builder"]


@pytest.mark.parametrize("name", ["Builder", "builder", "BUILDER"])
def test_agent_names_are_unique_per_company_ignoring_case(board, company, agent, name):
    response = board.post(f"/api/companies/{company.pk}/agents", {"name": name}, format="json")

    assert_validation_error(response, "name")
    assert Agent.objects.filter(company=company).count() == 1


def test_the_same_name_may_be_used_in_another_company(board, company, other_agent):
    response = board.post(
        f"/api/companies/{company.pk}/agents", {"name": other_agent.name}, format="json"
    )

    assert response.status_code == 201, response.content


def test_renaming_an_agent_onto_another_name_is_a_validation_error(board, company, agent):
    other = factories.AgentFactory(company=company, name="Scout")

    response = board.patch(f"/api/agents/{other.pk}", {"name": "BUILDER"}, format="json")

    assert_validation_error(response, "name")
    other.refresh_from_db()
    assert other.name == "Scout"


def test_reporting_to_another_companys_agent_is_a_validation_error(board, company, other_agent):
    response = board.post(
        f"/api/companies/{company.pk}/agents",
        {"name": "Spy", "reportsTo": other_agent.pk},
        format="json",
    )

    assert_validation_error(response, "reportsTo")
    assert not Agent.objects.filter(name="Spy").exists()


def test_reporting_to_an_unknown_agent_is_a_validation_error(board, company, agent):
    response = board.patch(f"/api/agents/{agent.pk}", {"reportsTo": new_id("agt")}, format="json")

    assert_validation_error(response, "reportsTo")


def test_an_agent_cannot_report_to_itself(board, agent):
    response = board.patch(f"/api/agents/{agent.pk}", {"reportsTo": agent.pk}, format="json")

    assert_validation_error(response, "reportsTo")
    agent.refresh_from_db()
    assert agent.reports_to_id is None
    assert activity_about(agent) == []


def test_a_two_agent_reporting_cycle_is_refused(board, company, agent):
    manager = factories.AgentFactory(company=company, name="Manager")
    agent.reports_to = manager
    agent.save()

    response = board.patch(f"/api/agents/{manager.pk}", {"reportsTo": agent.pk}, format="json")

    assert_validation_error(response, "reportsTo")
    manager.refresh_from_db()
    assert manager.reports_to_id is None


def test_a_longer_reporting_cycle_is_refused(board, company):
    top = factories.AgentFactory(company=company, name="Top")
    middle = factories.AgentFactory(company=company, name="Middle", reports_to=top)
    bottom = factories.AgentFactory(company=company, name="Bottom", reports_to=middle)

    response = board.patch(f"/api/agents/{top.pk}", {"reportsTo": bottom.pk}, format="json")

    assert_validation_error(response, "reportsTo")
    top.refresh_from_db()
    assert top.reports_to_id is None


def test_unknown_role_is_a_validation_error(board, company):
    response = board.post(
        f"/api/companies/{company.pk}/agents", {"name": "Wizard", "role": "wizard"}, format="json"
    )

    assert_validation_error(response, "role")
    assert not Agent.objects.filter(name="Wizard").exists()


def test_patch_ignores_status_which_only_the_verbs_change(board, agent):
    response = board.patch(f"/api/agents/{agent.pk}", {"status": "terminated"}, format="json")

    assert (response.status_code, response.json()["status"]) == (200, "active")
    agent.refresh_from_db()
    assert agent.status == "active"


def test_board_updates_an_agent_and_the_log_says_what_changed(board, board_user, company, agent):
    manager = factories.AgentFactory(company=company, name="Manager")

    response = board.patch(
        f"/api/agents/{agent.pk}",
        {"title": "Senior builder", "reportsTo": manager.pk},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert (response.json()["title"], response.json()["reportsTo"]) == (
        "Senior builder",
        wire(manager),
    )
    agent.refresh_from_db()
    assert (agent.title, agent.reports_to_id) == ("Senior builder", manager.pk)
    row = ActivityEvent.objects.get(action="agent.updated", entity_id=agent.pk)
    assert (row.actor_type, row.actor_id) == ("user", board_user.pk)
    changes = row.details["changes"]
    assert changes["title"] == {"from": "", "to": "Senior builder"}
    assert {"from": None, "to": manager.pk} in changes.values()


def test_agent_ids_that_do_not_exist_get_404(board):
    for path in (f"/api/agents/{new_id('agt')}", "/api/agents/garbage"):
        response = board.get(path)
        assert (response.status_code, response.json()) == (404, NOT_FOUND)


# -- API keys -----------------------------------------------------------------------------------


def test_creating_a_key_answers_the_token_once(board, board_user, agent):
    response = board.post(f"/api/agents/{agent.pk}/keys", {"name": "ci"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "name", "token", "createdAt"}
    assert body["name"] == "ci"
    assert AGENT_TOKEN.fullmatch(body["token"])
    key = AgentApiKey.objects.get(pk=stored(body["id"], AgentApiKey))
    assert (key.agent_id, key.name, key.revoked_at) == (agent.pk, "ci", None)
    assert key.token_hash == hashlib.sha256(body["token"].encode()).hexdigest()
    row = ActivityEvent.objects.get(action="agent.key_created")
    assert (row.entity_id, row.actor_type, row.actor_id) == (agent.pk, "user", board_user.pk)


def test_a_new_key_authenticates_its_agent(board, agent):
    token = board.post(f"/api/agents/{agent.pk}/keys", {}, format="json").json()["token"]

    response = client_for(token).get("/api/agents/me")

    assert response.status_code == 200
    assert response.json()["id"] == wire(agent)


def test_the_token_is_never_shown_or_stored_again(board, agent):
    token = board.post(f"/api/agents/{agent.pk}/keys", {"name": "ci"}, format="json").json()[
        "token"
    ]

    seen = [
        board.get(f"/api/agents/{agent.pk}").content,
        board.get(f"/api/companies/{agent.company_id}/agents").content,
        board.get(f"/api/companies/{agent.company_id}/activity").content,
        client_for(token).get("/api/agents/me").content,
    ]

    for content in seen:
        assert token.encode() not in content
    key = AgentApiKey.objects.get(agent=agent)
    stored = [str(v) for v in AgentApiKey.objects.filter(pk=key.pk).values().get().values()]
    assert all(token not in value for value in stored)
    assert all(token not in str(row.details) for row in ActivityEvent.objects.all())


def test_a_terminated_agent_gets_no_new_key(board, company):
    """Its keys are revoked for good (DESIGN §4); a fresh token that can never authenticate
    would only mislead whoever provisions it."""
    retired = factories.AgentFactory(company=company, name="Retired", status="terminated")

    response = board.post(f"/api/agents/{retired.pk}/keys", {"name": "again"}, format="json")

    assert 400 <= response.status_code < 500, response.content
    assert "token" not in response.json()
    assert not AgentApiKey.objects.filter(agent=retired).exists()


def test_each_key_is_different(board, agent):
    tokens = {
        board.post(f"/api/agents/{agent.pk}/keys", {}, format="json").json()["token"]
        for _ in range(3)
    }

    assert len(tokens) == 3
    assert AgentApiKey.objects.filter(agent=agent).count() == 3


# -- pause, resume, terminate -------------------------------------------------------------------


def test_pause_then_resume(board, board_user, agent):
    paused = board.post(f"/api/agents/{agent.pk}/pause")

    assert (paused.status_code, paused.json()["status"]) == (200, "paused")
    agent.refresh_from_db()
    assert agent.status == "paused"

    resumed = board.post(f"/api/agents/{agent.pk}/resume")

    assert (resumed.status_code, resumed.json()["status"]) == (200, "active")
    agent.refresh_from_db()
    assert agent.status == "active"
    assert activity_about(agent) == [
        ("agent.paused", "user", board_user.pk),
        ("agent.resumed", "user", board_user.pk),
    ]
    row = ActivityEvent.objects.get(action="agent.paused")
    assert row.details["status"] == {"from": "active", "to": "paused"}


def test_a_paused_agents_key_still_reads_but_cannot_write(board, agent, agent_client, company):
    board.post(f"/api/agents/{agent.pk}/pause")

    read = agent_client.get("/api/agents/me")
    write = agent_client.post(
        f"/api/companies/{company.pk}/issues", {"title": "While paused"}, format="json"
    )

    assert (read.status_code, read.json()["status"]) == (200, "paused")
    assert write.status_code == 403


def test_terminate_revokes_every_key(board, board_user, agent, agent_client):
    spare = factories.AgentApiKeyFactory(agent=agent)

    response = board.post(f"/api/agents/{agent.pk}/terminate")

    assert (response.status_code, response.json()["status"]) == (200, "terminated")
    agent.refresh_from_db()
    assert agent.status == "terminated"
    assert not AgentApiKey.objects.filter(agent=agent, revoked_at__isnull=True).exists()
    assert AgentApiKey.objects.filter(agent=agent).count() == 2
    for client in (agent_client, client_for(spare.token)):
        denied = client.get("/api/agents/me")
        assert denied.status_code == 401
        assert denied.json() == {"error": "Unauthorized", "code": "unauthorized"}
    assert activity_about(agent) == [("agent.terminated", "user", board_user.pk)]


def test_terminate_leaves_other_agents_keys_alone(board, company, agent):
    colleague = factories.AgentFactory(company=company, name="Colleague")
    colleague_client = client_for(factories.AgentApiKeyFactory(agent=colleague).token)

    board.post(f"/api/agents/{agent.pk}/terminate")

    assert colleague_client.get("/api/agents/me").status_code == 200


def test_a_terminated_agent_cannot_be_paused(board, company):
    retired = factories.AgentFactory(company=company, name="Retired", status="terminated")

    response = board.post(f"/api/agents/{retired.pk}/pause")

    assert response.status_code == 422, response.content
    assert response.json() == {
        "error": "Invalid state transition",
        "code": "invalid_transition",
        "details": {"from": "terminated", "to": "paused", "allowed": []},
    }
    retired.refresh_from_db()
    assert retired.status == "terminated"
    assert activity_about(retired) == []


@pytest.mark.parametrize("verb", ["resume", "terminate"])
def test_a_terminated_agent_stays_terminated(board, company, verb):
    retired = factories.AgentFactory(company=company, name="Retired", status="terminated")

    response = board.post(f"/api/agents/{retired.pk}/{verb}")

    assert response.status_code == 422, response.content
    body = response.json()
    assert (body["error"], body["code"]) == ("Invalid state transition", "invalid_transition")
    assert body["details"]["from"] == "terminated"
    retired.refresh_from_db()
    assert retired.status == "terminated"


def test_resuming_an_active_agent_is_an_invalid_transition(board, agent):
    response = board.post(f"/api/agents/{agent.pk}/resume")

    assert response.status_code == 422
    body = response.json()
    assert (body["code"], body["details"]["from"]) == ("invalid_transition", "active")
    agent.refresh_from_db()
    assert agent.status == "active"
    assert activity_about(agent) == []


# -- one activity row per mutation --------------------------------------------------------------


AGENT_MUTATIONS = [
    ("post", "/api/companies/{company}/agents", {"name": "Fresh"}, "agent.created"),
    ("patch", "/api/agents/{agent}", {"title": "Lead"}, "agent.updated"),
    ("post", "/api/agents/{agent}/keys", {"name": "ci"}, "agent.key_created"),
    ("post", "/api/agents/{agent}/pause", None, "agent.paused"),
    ("post", "/api/agents/{paused}/resume", None, "agent.resumed"),
    ("post", "/api/agents/{agent}/terminate", None, "agent.terminated"),
]


@pytest.mark.parametrize(
    ("method", "path", "data", "action"),
    [pytest.param(*mutation, id=mutation[-1]) for mutation in AGENT_MUTATIONS],
)
def test_each_agent_mutation_writes_one_activity_row(
    board, board_user, company, agent, method, path, data, action
):
    paused = factories.AgentFactory(company=company, name="Napper", status="paused")
    before = set(ActivityEvent.objects.values_list("pk", flat=True))

    response = getattr(board, method)(
        path.format(company=company.pk, agent=agent.pk, paused=paused.pk), data, format="json"
    )

    assert response.status_code in (200, 201), response.content
    [row] = ActivityEvent.objects.exclude(pk__in=before)
    entity_id = stored(response.json()["id"], Agent) if action == "agent.created" else None
    entity_id = entity_id or (paused.pk if action == "agent.resumed" else agent.pk)
    assert (row.action, row.entity_type, row.entity_id) == (action, "agent", entity_id)
    assert (row.company_id, row.actor_type, row.actor_id) == (company.pk, "user", board_user.pk)


def test_a_patch_that_changes_nothing_writes_no_activity(board, agent):
    response = board.patch(f"/api/agents/{agent.pk}", {"name": "Builder"}, format="json")

    assert response.status_code == 200
    assert activity_about(agent) == []


def test_a_key_request_with_an_unknown_field_is_400_and_creates_no_key(board, agent):
    response = board.post(
        f"/api/agents/{agent.pk}/keys", {"name": "ci", "expiresAt": "2030-01-01"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "Validation failed",
        "code": "validation_error",
        "details": {"expiresAt": ["Unknown field."]},
    }
    assert not agent.api_keys.exists()


@pytest.mark.parametrize("method", ["post", "patch"])
def test_a_name_another_agent_of_the_company_has_is_400_whatever_its_case(
    board, company, agent, method
):
    other = factories.AgentFactory(company=company, name="Scout")
    url = f"/api/companies/{company.pk}/agents" if method == "post" else f"/api/agents/{agent.pk}"

    response = getattr(board, method)(url, {"name": "scout"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "error": "Validation failed",
        "code": "validation_error",
        "details": {"name": ["An agent with this name already exists."]},
    }
    assert list(Agent.objects.filter(name__iexact="scout")) == [other]


def test_a_process_agents_env_values_are_never_read_back(board, company, agent_client):
    """The board sets them; the API, every member's list and the activity log mask them, and
    sending the mask back keeps what is stored."""
    secret = "sk-live-0123456789"
    config = {"command": "/usr/bin/true", "env": {"MODEL_KEY": secret, "MODE": "fast"}}
    created = board.post(
        f"/api/companies/{company.pk}/agents",
        {"name": "Runner", "adapterType": "process", "adapterConfig": config},
        format="json",
    )
    assert created.status_code == 201, created.json()
    runner = Agent.objects.get(name="Runner")

    # The round trip a client makes: read, change one value, send the whole config back.
    read = board.get(f"/api/agents/{runner.pk}").json()["adapterConfig"]
    read["env"]["MODE"] = "slow"
    patched = board.patch(f"/api/agents/{runner.pk}", {"adapterConfig": read}, format="json")

    assert patched.status_code == 200, patched.json()
    runner.refresh_from_db()
    assert runner.adapter_config["env"] == {"MODEL_KEY": secret, "MODE": "slow"}
    masked = {"MODEL_KEY": "********", "MODE": "********"}
    assert created.json()["adapterConfig"]["env"] == masked
    listed = agent_client.get(f"/api/companies/{company.pk}/agents").json()
    assert [r["adapterConfig"]["env"] for r in listed if r["name"] == "Runner"] == [masked]
    log = agent_client.get(f"/api/companies/{company.pk}/activity").content.decode()
    assert secret not in log and "fast" not in log
