"""Run ownership and release (DESIGN §3).

While an issue is in_progress, its assignee agent changes it only from the run that holds the
lock, or from a new run of its own once the holder is no longer live (the lock moves to that
run). Release clears assignee and lock (in_progress → todo, other statuses kept) and is allowed
to the assignee's holding run and to the board; force-release is the board's escape hatch.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent, HeartbeatRun
from companies.models import ActivityEvent
from issues.models import Comment, Issue
from tests import factories
from tests.conftest import client_for
from tests.factories import live_run
from tests.wire import wire

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def agent_client(agent: Agent, run: HeartbeatRun | None = None):
    return client_for(factories.AgentApiKeyFactory(agent=agent).token, run_id=run and run.pk)


def actions(issue: Issue) -> list[str]:
    rows = ActivityEvent.objects.filter(issue_id=issue.pk).order_by("created_at", "id")
    return list(rows.values_list("action", flat=True))


def state(issue: Issue) -> tuple:
    issue.refresh_from_db()
    return (issue.status, issue.assignee_agent_id, issue.checkout_run_id)


# The three ways an agent touches its in-progress issue, and what each answers on success.
def do_patch(client, issue):
    return client.patch(f"/api/issues/{issue.pk}", {"title": "Renamed mid-run"}, format="json")


def do_comment(client, issue):
    return client.post(f"/api/issues/{issue.pk}/comments", {"body": "Progress"}, format="json")


def do_release(client, issue):
    return client.post(f"/api/issues/{issue.pk}/release", {}, format="json")


ACTIONS = {
    "patch": (do_patch, 200),
    "comment": (do_comment, 201),
    "release": (do_release, 200),
}


@pytest.fixture
def holder(agent):
    """The agent's run that holds the lock."""
    return live_run(agent)


@pytest.fixture
def held_issue(company, agent, holder):
    return factories.IssueFactory(
        company=company,
        status="in_progress",
        assignee_agent=agent,
        checkout_run=holder,
        started_at=timezone.now(),
    )


@pytest.fixture
def peer(company):
    return factories.AgentFactory(company=company, name="Rival")


# -- ownership ----------------------------------------------------------------------------------


def test_holding_run_patches_its_issue(agent, holder, held_issue):
    response = do_patch(agent_client(agent, holder), held_issue)

    assert response.status_code == 200, response.json()
    assert (response.json()["title"], response.json()["checkoutRunId"]) == (
        "Renamed mid-run",
        wire(holder),
    )
    held_issue.refresh_from_db()
    assert (held_issue.title, held_issue.checkout_run_id) == ("Renamed mid-run", holder.pk)
    [row] = ActivityEvent.objects.filter(issue_id=held_issue.pk)
    assert (row.action, row.run_id) == ("issue.updated", holder.pk)


def test_holding_run_finishes_its_issue_with_a_comment(agent, holder, held_issue):
    response = agent_client(agent, holder).patch(
        f"/api/issues/{held_issue.pk}", {"status": "done", "comment": "Shipped."}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["checkoutRunId"]) == ("done", None)
    assert state(held_issue) == ("done", agent.pk, None)
    [comment] = Comment.objects.filter(issue=held_issue)
    assert (comment.body, comment.author_agent_id, comment.run_id) == (
        "Shipped.",
        agent.pk,
        holder.pk,
    )


def test_holding_run_comments_on_its_issue(agent, holder, held_issue):
    response = do_comment(agent_client(agent, holder), held_issue)

    assert response.status_code == 201, response.json()
    assert (response.json()["body"], response.json()["runId"]) == ("Progress", wire(holder))
    assert Comment.objects.filter(issue=held_issue, run_id=holder.pk).count() == 1
    assert state(held_issue) == ("in_progress", agent.pk, holder.pk)


@pytest.mark.parametrize("action", ACTIONS)
def test_same_agents_other_live_run_gets_409_run_ownership_conflict(
    agent, holder, held_issue, action
):
    intruder = live_run(agent)
    call, _ = ACTIONS[action]
    title, version = held_issue.title, held_issue.version

    response = call(agent_client(agent, intruder), held_issue)

    assert response.status_code == 409
    assert response.json() == {
        "error": "Issue run ownership conflict",
        "code": "run_ownership_conflict",
        "details": {
            "issueId": wire(held_issue),
            "checkoutRunId": wire(holder),
            "runId": wire(intruder),
        },
    }
    held_issue.refresh_from_db()
    assert (held_issue.status, held_issue.assignee_agent_id, held_issue.checkout_run_id) == (
        "in_progress",
        agent.pk,
        holder.pk,
    )
    assert (held_issue.title, held_issue.version) == (title, version)
    assert not Comment.objects.filter(issue=held_issue).exists()
    assert actions(held_issue) == []


@pytest.mark.parametrize("action", ["patch", "comment"])
@pytest.mark.parametrize("how", ["succeeded", "lease_expired"])
def test_same_agents_new_run_takes_over_when_the_holder_is_no_longer_live(
    agent, holder, held_issue, action, how
):
    if how == "lease_expired":
        HeartbeatRun.objects.filter(pk=holder.pk).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
    else:
        HeartbeatRun.objects.filter(pk=holder.pk).update(status=how, finished_at=timezone.now())
    new_run = live_run(agent)
    call, expected_status = ACTIONS[action]

    response = call(agent_client(agent, new_run), held_issue)

    assert response.status_code == expected_status, response.json()
    assert state(held_issue) == ("in_progress", agent.pk, new_run.pk)
    adopted = ActivityEvent.objects.get(
        issue_id=held_issue.pk, action="issue.checkout_lock_adopted"
    )
    assert (adopted.actor_id, adopted.run_id) == (agent.pk, new_run.pk)
    assert adopted.details == {"runId": new_run.pk, "previousRunId": holder.pk}


def test_same_agents_new_run_releases_when_the_holder_is_no_longer_live(agent, holder, held_issue):
    HeartbeatRun.objects.filter(pk=holder.pk).update(status="failed", finished_at=timezone.now())

    response = do_release(agent_client(agent, live_run(agent)), held_issue)

    assert response.status_code == 200, response.json()
    assert state(held_issue) == ("todo", None, None)


# -- release ------------------------------------------------------------------------------------


def test_holding_run_releases_the_issue_back_to_todo_unassigned(agent, holder, held_issue):
    response = do_release(agent_client(agent, holder), held_issue)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["assigneeAgentId"], body["checkoutRunId"]) == ("todo", None, None)
    assert body["executionLockedAt"] is None
    held_issue.refresh_from_db()
    assert (held_issue.status, held_issue.assignee_agent_id, held_issue.checkout_run_id) == (
        "todo",
        None,
        None,
    )
    assert held_issue.execution_locked_at is None
    [row] = ActivityEvent.objects.filter(issue_id=held_issue.pk)
    assert (row.action, row.actor_id, row.run_id) == ("issue.released", agent.pk, holder.pk)
    assert row.details["changes"]["status"] == {"from": "in_progress", "to": "todo"}
    assert row.details["changes"]["checkoutRunId"] == {"from": holder.pk, "to": None}


@pytest.mark.parametrize("status", ["blocked", "todo", "in_review", "backlog"])
def test_release_keeps_any_status_other_than_in_progress(agent, holder, company, status):
    issue = factories.IssueFactory(company=company, status=status, assignee_agent=agent)

    response = do_release(agent_client(agent, holder), issue)

    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["assigneeAgentId"]) == (status, None)
    assert state(issue) == (status, None, None)


def test_another_agent_cannot_release_a_checked_out_issue(peer, held_issue, agent, holder):
    response = do_release(agent_client(peer, live_run(peer)), held_issue)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert state(held_issue) == ("in_progress", agent.pk, holder.pk)
    assert actions(held_issue) == []


def test_another_agent_cannot_release_an_issue_assigned_to_someone_else(peer, agent, company):
    issue = factories.IssueFactory(company=company, status="blocked", assignee_agent=agent)

    response = do_release(agent_client(peer, live_run(peer)), issue)

    assert response.status_code == 403
    assert state(issue) == ("blocked", agent.pk, None)


def test_board_releases_a_live_lock(board, board_user, agent, held_issue):
    response = do_release(board, held_issue)

    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["assigneeAgentId"]) == ("todo", None)
    assert state(held_issue) == ("todo", None, None)
    [row] = ActivityEvent.objects.filter(issue_id=held_issue.pk)
    assert (row.action, row.actor_type, row.actor_id) == ("issue.released", "user", board_user.pk)


def test_release_of_another_companys_issue_is_404(other_client, held_issue, agent, holder):
    response = do_release(other_client, held_issue)

    assert response.status_code == 404
    assert state(held_issue) == ("in_progress", agent.pk, holder.pk)


def test_release_of_an_unknown_issue_is_404(board):
    response = board.post("/api/issues/iss_00000000000000000000000000/release", {}, format="json")

    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "code": "not_found"}


# -- force-release (board only) -----------------------------------------------------------------


def force_release_url(issue: Issue, clear_assignee: bool | None = None) -> str:
    url = f"/api/issues/{issue.pk}/admin/force-release"
    if clear_assignee is not None:
        url += f"?clearAssignee={'true' if clear_assignee else 'false'}"
    return url


def test_board_force_release_clearing_the_assignee_answers_the_previous_lock(
    board, board_user, agent, holder, held_issue
):
    response = board.post(force_release_url(held_issue, clear_assignee=True), format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"issue", "previousLock"}
    assert body["previousLock"] == {
        "runId": wire(holder),
        "agentId": wire(agent),
        "runStatus": "running",
        "runWasLive": True,
    }
    issue = body["issue"]
    assert (issue["id"], issue["status"], issue["assigneeAgentId"], issue["checkoutRunId"]) == (
        wire(held_issue),
        "todo",
        None,
        None,
    )
    assert state(held_issue) == ("todo", None, None)
    [row] = ActivityEvent.objects.filter(issue_id=held_issue.pk)
    assert (row.action, row.actor_id) == ("issue.lock_force_released", board_user.pk)
    assert row.details["previousLock"] == {
        "runId": holder.pk,
        "agentId": agent.pk,
        "runStatus": "running",
        "runWasLive": True,
    }


def test_board_force_release_keeps_the_assignee_by_default(board, agent, holder, held_issue):
    HeartbeatRun.objects.filter(pk=holder.pk).update(status="failed", finished_at=timezone.now())

    response = board.post(force_release_url(held_issue), format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["previousLock"] == {
        "runId": wire(holder),
        "agentId": wire(agent),
        "runStatus": "failed",
        "runWasLive": False,
    }
    assert response.json()["issue"]["assigneeAgentId"] == wire(agent)
    assert state(held_issue) == ("todo", agent.pk, None)


def test_agent_cannot_force_release(agent, holder, held_issue):
    response = agent_client(agent, holder).post(
        force_release_url(held_issue, clear_assignee=True), format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert state(held_issue) == ("in_progress", agent.pk, holder.pk)
    assert actions(held_issue) == []


def test_force_release_of_another_companys_issue_is_404(board, other_company, other_agent):
    run = live_run(other_agent)
    theirs = factories.IssueFactory(
        company=other_company, status="in_progress", assignee_agent=other_agent, checkout_run=run
    )

    response = board.post(force_release_url(theirs, clear_assignee=True), format="json")

    assert response.status_code == 404
    assert state(theirs) == ("in_progress", other_agent.pk, run.pk)


def test_force_release_of_an_unknown_issue_is_404(board):
    response = board.post("/api/issues/ACM-404/admin/force-release", format="json")

    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "code": "not_found"}
