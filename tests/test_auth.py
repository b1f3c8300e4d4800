"""Who may call the API (DESIGN §4): agents with `pcp_` keys, the board with `pcb_` tokens or an
admin session (CSRF enforced), nobody else. Health and the OpenAPI document are public."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.middleware.csrf import _get_new_csrf_string
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import Agent, AgentApiKey
from companies.models import BoardToken, new_secret
from issues.models import Comment, Issue, Status
from tests import factories
from tests.conftest import client_for
from tests.wire import wire

pytestmark = pytest.mark.django_db

UNAUTHORIZED = {"error": "Unauthorized", "code": "unauthorized"}


def assert_unauthorized(response) -> None:
    assert response.status_code == 401, response.content
    assert response.json() == UNAUTHORIZED
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.fixture
def issue(company):
    return factories.IssueFactory(company=company, title="Wire the lab", status=Status.TODO)


# -- missing and wrong credentials --------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/companies", "/api/users/me", "/api/agents/me", "/api/issues/ACM-1"],
)
def test_request_without_authorization_gets_401_with_bearer_challenge(anon, company, issue, path):
    assert_unauthorized(anon.get(path))


def test_post_without_authorization_gets_401_and_creates_nothing(anon, company):
    response = anon.post(f"/api/companies/{company.pk}/issues", {"title": "x"}, format="json")

    assert_unauthorized(response)
    assert not Issue.objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        "Bearer " + new_secret("pcp_"),  # well-formed agent key nobody was given
        "Bearer " + new_secret("pcb_"),  # well-formed board token nobody was given
        "Bearer pcp_short",
        "Bearer not-a-token",
        "Bearer",
        "Basic YWxpY2U6c2VjcmV0",
    ],
    ids=["unknown-agent-key", "unknown-board-token", "short-key", "garbage", "empty", "basic"],
)
def test_wrong_credentials_get_401(company, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    assert_unauthorized(client.get(f"/api/companies/{company.pk}"))


def test_revoked_agent_key_gets_401(agent):
    key = factories.AgentApiKeyFactory(agent=agent, revoked_at=timezone.now())

    assert_unauthorized(client_for(key.token).get("/api/agents/me"))


def test_terminated_agents_key_gets_401_even_if_not_revoked(company):
    retired = factories.AgentFactory(company=company, name="Retired", status="terminated")
    key = factories.AgentApiKeyFactory(agent=retired)

    assert_unauthorized(client_for(key.token).get("/api/agents/me"))


# -- what a process trusts about a key (PAPERCLIP_AUTH_CACHE_SECONDS) -------------------------


def revoke_elsewhere(key: AgentApiKey) -> None:
    """Revoke the key the way another server process would: a row change this process is not
    told about."""
    AgentApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())


def test_a_key_revoked_by_another_process_is_refused_once_the_cache_period_ends(agent, settings):
    settings.PAPERCLIP_AUTH_CACHE_SECONDS = 1
    key = factories.AgentApiKeyFactory(agent=agent)
    client = client_for(key.token)
    assert client.get("/api/agents/me").status_code == 200

    revoke_elsewhere(key)
    within = client.get("/api/agents/me").status_code
    time.sleep(1.1)

    assert within == 200  # trusted for at most the cache period...
    assert_unauthorized(client.get("/api/agents/me"))  # ...and never past it


def test_without_the_cache_a_revoked_key_is_refused_on_the_next_request(agent, settings):
    settings.PAPERCLIP_AUTH_CACHE_SECONDS = 0
    key = factories.AgentApiKeyFactory(agent=agent)
    client = client_for(key.token)
    assert client.get("/api/agents/me").status_code == 200

    revoke_elsewhere(key)

    assert_unauthorized(client.get("/api/agents/me"))


def test_terminating_an_agent_refuses_its_key_at_once_in_the_process_that_did_it(
    agent, board, company
):
    client = client_for(factories.AgentApiKeyFactory(agent=agent).token)
    assert client.get("/api/agents/me").status_code == 200

    assert board.post(f"/api/agents/{agent.pk}/terminate").status_code == 200

    assert_unauthorized(client.get("/api/agents/me"))


def test_pausing_an_agent_refuses_its_writes_at_once_in_the_process_that_did_it(
    agent, board, company
):
    client = client_for(factories.AgentApiKeyFactory(agent=agent).token)
    assert client.post(f"/api/companies/{company.pk}/issues", {"title": "a"}).status_code == 201

    assert board.post(f"/api/agents/{agent.pk}/pause").status_code == 200
    refused = client.post(f"/api/companies/{company.pk}/issues", {"title": "b"})

    assert refused.status_code == 403, refused.json()


def test_agent_key_authenticates_as_its_agent(agent, agent_client):
    response = agent_client.get("/api/agents/me")

    assert response.status_code == 200
    assert response.json()["id"] == wire(agent)


# -- board tokens ----------------------------------------------------------------------------


def test_board_token_authenticates_as_its_user(board_user, board, company):
    response = board.get("/api/users/me")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["username"]) == (wire(board_user), "alice")


def test_revoked_board_token_gets_401(board_user, company):
    token = factories.BoardTokenFactory(user=board_user, revoked_at=timezone.now())

    assert_unauthorized(client_for(token.token).get(f"/api/companies/{company.pk}"))


def test_board_token_of_a_deactivated_user_gets_401(board_user, company):
    token = factories.BoardTokenFactory(user=board_user)
    board_user.is_active = False
    board_user.save()

    assert_unauthorized(client_for(token.token).get(f"/api/companies/{company.pk}"))


# -- last use is recorded -----------------------------------------------------------------------


def test_agent_key_use_is_recorded_in_last_used_at(agent, django_capture_on_commit_callbacks):
    key = factories.AgentApiKeyFactory(agent=agent)
    assert key.last_used_at is None
    before = timezone.now()

    # Recorded once the request commits (so the key's row is not locked during the request).
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(key.token).get("/api/agents/me")

    assert response.status_code == 200
    last_used = AgentApiKey.objects.get(pk=key.pk).last_used_at
    assert last_used is not None
    assert before - timedelta(seconds=1) <= last_used <= timezone.now()


def test_board_token_use_is_recorded_in_last_used_at(
    board_user, django_capture_on_commit_callbacks
):
    token = factories.BoardTokenFactory(user=board_user)
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(token.token).get("/api/users/me")

    assert response.status_code == 200
    last_used = BoardToken.objects.get(pk=token.pk).last_used_at
    assert last_used is not None
    assert before - timedelta(seconds=1) <= last_used <= timezone.now()


def test_failed_authentication_records_no_use(agent):
    revoked = factories.AgentApiKeyFactory(agent=agent, revoked_at=timezone.now())

    assert_unauthorized(client_for(revoked.token).get("/api/agents/me"))

    assert AgentApiKey.objects.get(pk=revoked.pk).last_used_at is None


# -- admin sessions ---------------------------------------------------------------------------


def test_admin_session_can_read_the_api(board_user, company):
    client = APIClient()
    client.force_login(board_user)

    response = client.get(f"/api/companies/{company.pk}")

    assert response.status_code == 200
    assert response.json()["id"] == wire(company)


def test_wrong_bearer_token_gets_401_even_with_a_valid_session(board_user, company):
    """Token classes come first: a bad token is not rescued by a session cookie."""
    client = APIClient()
    client.force_login(board_user)
    client.credentials(HTTP_AUTHORIZATION="Bearer " + new_secret("pcb_"))

    assert_unauthorized(client.get(f"/api/companies/{company.pk}"))


def test_session_post_without_csrf_token_is_refused_and_creates_nothing(board_user, company):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(board_user)

    response = client.post(
        f"/api/companies/{company.pk}/issues", {"title": "Sneaky"}, format="json"
    )

    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "forbidden"
    assert "CSRF" in body["error"]
    assert not Issue.objects.exists()


def test_session_post_with_csrf_token_is_accepted(board_user, company):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(board_user)
    csrf = _get_new_csrf_string()
    client.cookies["csrftoken"] = csrf

    response = client.post(
        f"/api/companies/{company.pk}/issues",
        {"title": "Legit"},
        format="json",
        HTTP_X_CSRFTOKEN=csrf,
    )

    assert response.status_code == 201, response.content
    issue = Issue.objects.get()
    assert (issue.title, issue.created_by_user_id) == ("Legit", board_user.pk)


def test_bearer_token_requests_need_no_csrf_token(board, company):
    response = board.post(
        f"/api/companies/{company.pk}/issues", {"title": "Scripted"}, format="json"
    )

    assert response.status_code == 201
    assert Issue.objects.get().title == "Scripted"


# -- paused agents read but do not write ------------------------------------------------------


@pytest.fixture
def paused_agent(company):
    return factories.AgentFactory(company=company, name="Sleeper", status=Agent.Status.PAUSED)


@pytest.fixture
def paused_client(paused_agent):
    return client_for(factories.AgentApiKeyFactory(agent=paused_agent).token)


@pytest.fixture
def paused_agents_issue(company, paused_agent):
    return factories.IssueFactory(
        company=company, title="Sleeper's task", status=Status.TODO, assignee_agent=paused_agent
    )


def test_paused_agent_can_read(paused_client, paused_agent, paused_agents_issue, company):
    me = paused_client.get("/api/agents/me")
    issue = paused_client.get(f"/api/issues/{paused_agents_issue.pk}")
    issues = paused_client.get(f"/api/companies/{company.pk}/issues")

    assert (me.status_code, me.json()["status"]) == (200, "paused")
    assert (issue.status_code, issue.json()["title"]) == (200, "Sleeper's task")
    assert issues.status_code == 200
    assert [row["id"] for row in issues.json()] == [wire(paused_agents_issue)]


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("post", "/api/issues/{issue}/comments", {"body": "still here"}),
        ("patch", "/api/issues/{issue}", {"title": "Renamed while paused"}),
        ("patch", "/api/issues/{issue}", {"status": "blocked"}),
        ("post", "/api/companies/{company}/issues", {"title": "New while paused"}),
    ],
    ids=["comment", "patch-title", "patch-status", "create-issue"],
)
def test_paused_agent_cannot_mutate(
    paused_client, paused_agents_issue, company, method, path, data
):
    url = path.format(issue=paused_agents_issue.pk, company=company.pk)

    response = getattr(paused_client, method)(url, data, format="json")

    assert response.status_code == 403, response.content
    assert response.json()["code"] == "forbidden"
    paused_agents_issue.refresh_from_db()
    assert (paused_agents_issue.title, paused_agents_issue.status) == ("Sleeper's task", "todo")
    assert Issue.objects.count() == 1
    assert not Comment.objects.exists()


# -- public endpoints -------------------------------------------------------------------------


def test_health_needs_no_authentication(anon):
    response = anon.get("/api/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_health_ignores_bad_credentials():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + new_secret("pcp_"))

    response = client.get("/api/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_openapi_document_describes_the_api(anon):
    response = anon.get("/api/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/health",
        "/api/companies",
        "/api/companies/{id}",
        "/api/agents/me",
        "/api/users/me",
        "/api/issues/{id}",
        "/api/issues/{id}/reopen",
    } <= set(schema["paths"])
    assert {"get", "patch", "delete"} <= set(schema["paths"]["/api/issues/{id}"])
    schemes = schema["components"]["securitySchemes"].values()
    assert any(s.get("type") == "http" and s.get("scheme") == "bearer" for s in schemes)


def test_api_docs_page_renders_html(anon):
    response = anon.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"openapi.json" in response.content
