"""The `X-Paperclip-Run-Id` header, run tokens and lease renewal (DESIGN §3).

Agents name their run on every state change. A malformed id is a 400; an unknown run, another
agent's run, or a run that is finished or expired is a 422; an agent changing its in-progress
issue without one is a 401. Board callers never need the header and an unknown one is ignored.
The run token a wakeup hands out speaks for its agent and that run only. Any request carrying a
run id renews the run's lease, at most once every few seconds.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import jwt
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import HeartbeatRun
from companies.models import ActivityEvent
from issues.models import Comment, Issue
from tests import factories
from tests.conftest import client_for
from tests.factories import live_run
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db

UNKNOWN_RUN = "run_" + "0" * 26


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def key(agent):
    return factories.AgentApiKeyFactory(agent=agent).token


@pytest.fixture
def run(agent):
    return live_run(agent)


@pytest.fixture
def held_issue(company, agent, run):
    return factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=agent, checkout_run=run
    )


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def patch_title(client, issue: Issue, title: str = "Renamed"):
    return client.patch(f"/api/issues/{issue.pk}", {"title": title}, format="json")


def checkout(client, issue: Issue):
    return client.post(f"/api/issues/{issue.pk}/checkout", {}, format="json")


def unchanged(issue: Issue, title: str) -> bool:
    before = (issue.title, issue.version, issue.checkout_run_id)
    issue.refresh_from_db()
    return (issue.title, issue.version, issue.checkout_run_id) == before and issue.title == title


# -- malformed ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "trace-7f3a9c",
        "run_short",
        "RUN_01J00000000000000000000000",
        "iss_" + "0" * 26,
        "run_" + "0" * 26 + "x",
        "run_" + "!" * 26,
    ],
)
def test_malformed_run_id_is_400_run_id_malformed(key, held_issue, header):
    title = held_issue.title

    response = patch_title(client_for(key, run_id=header), held_issue)

    assert response.status_code == 400
    assert response.json() == {
        "error": "Malformed run id",
        "code": "run_id_malformed",
        "details": {"runId": header},
    }
    assert unchanged(held_issue, title)


def test_malformed_run_id_is_400_even_on_a_read(key, held_issue):
    response = client_for(key, run_id="not-a-run").get(f"/api/issues/{held_issue.pk}")

    assert response.status_code == 400
    assert response.json()["code"] == "run_id_malformed"


# -- unknown, foreign, finished, expired --------------------------------------------------------


def test_unknown_run_id_is_422_on_checkout(key, company):
    issue = factories.IssueFactory(company=company, status="todo")

    response = checkout(client_for(key, run_id=UNKNOWN_RUN), issue)

    assert response.status_code == 422
    assert response.json() == {
        "error": "Unknown run for this agent",
        "code": "run_unknown",
        "details": {"runId": wire(UNKNOWN_RUN)},
    }
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id, issue.checkout_run_id) == ("todo", None, None)


def test_unknown_run_id_is_422_when_changing_an_in_progress_issue(key, held_issue):
    title = held_issue.title

    response = patch_title(client_for(key, run_id=UNKNOWN_RUN), held_issue)

    assert response.status_code == 422
    assert response.json()["code"] == "run_unknown"
    assert unchanged(held_issue, title)


def test_another_agents_run_is_422(key, company, held_issue):
    peer = factories.AgentFactory(company=company, name="Rival")
    title = held_issue.title

    response = patch_title(client_for(key, run_id=live_run(peer).pk), held_issue)

    assert response.status_code == 422
    assert response.json()["code"] == "run_unknown"
    assert unchanged(held_issue, title)


def test_another_agents_run_is_422_on_checkout(key, company):
    peer = factories.AgentFactory(company=company, name="Rival")
    issue = factories.IssueFactory(company=company, status="todo")

    response = checkout(client_for(key, run_id=live_run(peer).pk), issue)

    assert response.status_code == 422
    assert response.json()["code"] == "run_unknown"
    issue.refresh_from_db()
    assert (issue.status, issue.checkout_run_id) == ("todo", None)


def test_comment_naming_an_unknown_run_is_422_and_not_kept(key, company):
    # A comment is a state change: its run id lands in the comment and the activity log.
    issue = factories.IssueFactory(company=company, status="todo")

    response = client_for(key, run_id=UNKNOWN_RUN).post(
        f"/api/issues/{issue.pk}/comments", {"body": "Hello"}, format="json"
    )

    assert response.status_code == 422, response.json()
    assert response.json()["code"] == "run_unknown"
    assert not Comment.objects.filter(issue=issue).exists()
    assert not ActivityEvent.objects.filter(run_id=UNKNOWN_RUN).exists()


def test_patch_of_a_todo_issue_naming_another_agents_run_is_422(key, agent, company):
    peer = factories.AgentFactory(company=company, name="Rival")
    peer_run = live_run(peer)
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)
    title = issue.title

    response = patch_title(client_for(key, run_id=peer_run.pk), issue)

    assert response.status_code == 422, response.json()
    assert response.json()["code"] == "run_unknown"
    assert unchanged(issue, title)
    assert not ActivityEvent.objects.filter(run_id=peer_run.pk).exists()


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled", "timed_out"])
def test_finished_run_is_422_run_not_live(key, agent, company, status):
    finished = factories.HeartbeatRunFactory(agent=agent, status=status, finished_at=timezone.now())
    issue = factories.IssueFactory(company=company, status="todo")

    response = checkout(client_for(key, run_id=finished.pk), issue)

    assert response.status_code == 422
    body = response.json()
    assert (body["code"], body["details"]["runId"], body["details"]["status"]) == (
        "run_not_live",
        wire(finished),
        status,
    )
    issue.refresh_from_db()
    assert (issue.status, issue.checkout_run_id) == ("todo", None)


def test_run_whose_lease_expired_is_422_and_stays_expired(key, agent, company):
    expired_at = timezone.now() - timedelta(seconds=1)
    expired = live_run(agent, lease_expires_at=expired_at)
    issue = factories.IssueFactory(company=company, status="todo")

    response = checkout(client_for(key, run_id=expired.pk), issue)

    assert response.status_code == 422
    assert response.json()["code"] == "run_not_live"
    expired.refresh_from_db()
    assert expired.lease_expires_at == expired_at  # a request does not revive a dead run
    issue.refresh_from_db()
    assert (issue.status, issue.checkout_run_id) == ("todo", None)


# -- required for agents on in-progress issues --------------------------------------------------


@pytest.mark.parametrize("action", ["patch", "release"])
def test_agent_changing_its_in_progress_issue_without_a_run_id_is_401(
    key, agent, run, held_issue, action
):
    client = client_for(key)
    if action == "patch":
        response = patch_title(client, held_issue)
    else:
        response = client.post(f"/api/issues/{held_issue.pk}/release", {}, format="json")

    assert response.status_code == 401
    assert response.json() == {"error": "Agent run id required", "code": "run_id_required"}
    assert response["WWW-Authenticate"] == "Bearer"
    held_issue.refresh_from_db()
    assert (held_issue.status, held_issue.assignee_agent_id, held_issue.checkout_run_id) == (
        "in_progress",
        agent.pk,
        run.pk,
    )


# -- board callers ------------------------------------------------------------------------------


def test_board_never_needs_a_run_id(board, held_issue):
    response = patch_title(board, held_issue, "Board rename")

    assert response.status_code == 200, response.json()
    held_issue.refresh_from_db()
    assert held_issue.title == "Board rename"


@pytest.mark.parametrize("header", ["trace-1b2c3d4e", UNKNOWN_RUN, "run_!!"])
def test_board_run_header_is_ignored(board_user, held_issue, run, header):
    board = client_for(factories.BoardTokenFactory(user=board_user).token, run_id=header)

    response = patch_title(board, held_issue, "Board rename")

    assert response.status_code == 200, response.json()
    held_issue.refresh_from_db()
    assert (held_issue.title, held_issue.checkout_run_id) == ("Board rename", run.pk)
    [row] = ActivityEvent.objects.filter(issue_id=held_issue.pk)
    assert (row.actor_type, row.run_id) == ("user", None)


def test_board_naming_an_agents_run_does_not_renew_its_lease(board_user, agent):
    near = timezone.now() + timedelta(seconds=20)
    run = live_run(agent, lease_expires_at=near)
    board = client_for(factories.BoardTokenFactory(user=board_user).token, run_id=run.pk)

    assert board.get("/api/users/me").status_code == 200

    run.refresh_from_db()
    assert run.lease_expires_at == near


# -- run tokens ---------------------------------------------------------------------------------


@pytest.fixture
def woken(board, agent):
    """The board wakes the agent: the answer carries the run and its token."""
    response = board.post(f"/api/agents/{agent.pk}/wakeup", {}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()


def test_run_token_authenticates_as_the_agent(woken, agent):
    response = client_for(woken["runToken"]).get("/api/agents/me")

    assert response.status_code == 200, response.json()
    assert response.json()["id"] == wire(agent)


def test_run_token_speaks_for_its_run_without_a_header(woken, agent, company):
    issue = factories.IssueFactory(company=company, status="todo")

    response = checkout(client_for(woken["runToken"]), issue)

    assert response.status_code == 200, response.json()
    assert response.json()["checkoutRunId"] == woken["id"]
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id, issue.checkout_run_id) == (
        "in_progress",
        agent.pk,
        stored(woken["id"], HeartbeatRun),
    )


def test_run_token_with_the_same_run_in_the_header_is_accepted(woken, agent):
    response = client_for(woken["runToken"], run_id=woken["id"]).get("/api/agents/me")

    assert response.status_code == 200, response.json()


def test_run_token_with_a_different_run_in_the_header_is_422(woken, agent, company):
    other = live_run(agent)
    issue = factories.IssueFactory(company=company, status="todo")

    response = checkout(client_for(woken["runToken"], run_id=other.pk), issue)

    assert response.status_code == 422
    assert response.json() == {
        "error": "X-Paperclip-Run-Id does not match the run token",
        "code": "run_id_mismatch",
        "details": {"runId": wire(other), "tokenRunId": woken["id"]},
    }
    issue.refresh_from_db()
    assert (issue.status, issue.checkout_run_id) == ("todo", None)


def tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return f"{header}.{payload}.{flipped}"


def test_tampered_run_token_is_401(woken):
    response = client_for(tampered(woken["runToken"])).get("/api/agents/me")

    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized", "code": "unauthorized"}
    assert response["WWW-Authenticate"] == "Bearer"


def test_run_token_signed_with_another_key_is_401(woken, agent):
    claims = jwt.decode(woken["runToken"], options={"verify_signature": False})
    forged = jwt.encode(claims, "not-the-secret-" + "x" * 32, algorithm="HS256")

    response = client_for(forged).get("/api/agents/me")

    assert response.status_code == 401


def test_expired_run_token_is_401(board, agent, settings):
    settings.PAPERCLIP_RUN_TOKEN_SECONDS = -60
    woken = board.post(f"/api/agents/{agent.pk}/wakeup", {}, format="json").json()

    response = client_for(woken["runToken"]).get("/api/agents/me")

    assert response.status_code == 401


def test_run_token_of_a_terminated_agent_is_401(board, woken, agent):
    assert board.post(f"/api/agents/{agent.pk}/terminate", format="json").status_code == 200

    response = client_for(woken["runToken"]).get("/api/agents/me")

    assert response.status_code == 401


# -- lease renewal ------------------------------------------------------------------------------


def lease_updates(queries) -> list[str]:
    table = HeartbeatRun._meta.db_table
    return [
        q["sql"]
        for q in queries
        if q["sql"].startswith("UPDATE") and f'"{table}"' in q["sql"] and "lease" in q["sql"]
    ]


def test_request_carrying_the_run_id_pushes_the_lease_forward(key, agent, settings):
    run = live_run(agent, lease_expires_at=timezone.now() + timedelta(seconds=10))
    client = client_for(key, run_id=run.pk)
    before = timezone.now()

    response = client.get("/api/agents/me")

    assert response.status_code == 200
    run.refresh_from_db()
    lease = timedelta(seconds=settings.PAPERCLIP_LEASE_SECONDS)
    assert before + lease <= run.lease_expires_at <= timezone.now() + lease


def test_second_request_within_five_seconds_does_not_write_the_lease_again(key, agent):
    run = live_run(agent, lease_expires_at=timezone.now() + timedelta(seconds=10))
    client = client_for(key, run_id=run.pk)
    with CaptureQueriesContext(connection) as first:
        assert client.get("/api/agents/me").status_code == 200
    run.refresh_from_db()
    renewed = run.lease_expires_at

    with CaptureQueriesContext(connection) as second:
        assert client.get("/api/agents/me").status_code == 200

    run.refresh_from_db()
    assert run.lease_expires_at == renewed
    assert len(lease_updates(first.captured_queries)) == 1
    assert lease_updates(second.captured_queries) == []


def test_run_token_requests_renew_the_lease_too(woken, agent):
    HeartbeatRun.objects.filter(pk=stored(woken["id"], HeartbeatRun)).update(
        lease_expires_at=timezone.now() + timedelta(seconds=10)
    )

    assert client_for(woken["runToken"]).get("/api/agents/me").status_code == 200

    run = HeartbeatRun.objects.get(pk=stored(woken["id"], HeartbeatRun))
    assert run.lease_expires_at > timezone.now() + timedelta(seconds=200)


def test_naming_another_agents_run_does_not_renew_its_lease(key, company):
    peer = factories.AgentFactory(company=company, name="Rival")
    near = timezone.now() + timedelta(seconds=20)
    peer_run = live_run(peer, lease_expires_at=near)

    client_for(key, run_id=peer_run.pk).get("/api/agents/me")

    peer_run.refresh_from_db()
    assert peer_run.lease_expires_at == near


def test_finished_run_is_not_renewed(key, agent):
    near = timezone.now() + timedelta(seconds=20)
    finished = factories.HeartbeatRunFactory(
        agent=agent, status="succeeded", finished_at=timezone.now(), lease_expires_at=near
    )

    client_for(key, run_id=finished.pk).get("/api/agents/me")

    finished.refresh_from_db()
    assert (finished.status, finished.lease_expires_at) == ("succeeded", near)
