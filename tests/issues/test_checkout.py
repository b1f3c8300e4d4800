"""Checkout (DESIGN §3): `POST /api/issues/{id}/checkout` claims an issue for one run.

Outcomes, in order: success (the issue goes in_progress, assignee = agent, lock = run); the same
run again (200, unchanged); the same agent's new run adopting a lock whose run is no longer live
(only with `in_progress` expected); otherwise 409 naming the holder. An agent checks out only as
itself; the board names the agent and wakes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from agents.models import Agent, HeartbeatRun, WakeupRequest
from companies.models import ActivityEvent
from issues.models import Issue, Project
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


def checkout(client, issue: Issue, body: dict | None = None):
    return client.post(f"/api/issues/{issue.pk}/checkout", body or {}, format="json")


def actions(issue: Issue) -> list[str]:
    rows = ActivityEvent.objects.filter(issue_id=issue.pk).order_by("created_at", "id")
    return list(rows.values_list("action", flat=True))


def lock_of(issue: Issue) -> tuple:
    issue.refresh_from_db()
    return (issue.status, issue.assignee_agent_id, issue.checkout_run_id)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def conflict(issue: Issue, status: str, assignee: str | None, run_id: str | None, live: bool):
    return {
        "error": "Issue checkout conflict",
        "code": "checkout_conflict",
        "details": {
            "issueId": wire(issue),
            "status": status,
            "assigneeAgentId": wire(assignee),
            "checkoutRunId": wire(run_id),
            "holderRunIsLive": live,
        },
    }


@pytest.fixture
def run(agent):
    return live_run(agent)


@pytest.fixture
def client(agent, run):
    """The agent, speaking for its live run."""
    return agent_client(agent, run)


@pytest.fixture
def peer(company):
    return factories.AgentFactory(company=company, name="Rival")


# -- success ------------------------------------------------------------------------------------


def test_checkout_of_a_todo_issue_claims_it_for_the_run(client, agent, run, company):
    issue = factories.IssueFactory(company=company, status="todo")
    before = timezone.now()

    response = checkout(client, issue, {"agentId": agent.pk, "expectedStatuses": ["todo"]})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["id"], body["status"], body["assigneeAgentId"], body["checkoutRunId"]) == (
        wire(issue),
        "in_progress",
        wire(agent),
        wire(run),
    )
    assert before <= parse_time(body["startedAt"]) <= timezone.now()
    assert body["executionLockedAt"] is not None
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id, issue.checkout_run_id) == (
        "in_progress",
        agent.pk,
        run.pk,
    )
    assert issue.started_at == parse_time(body["startedAt"])
    [row] = ActivityEvent.objects.filter(issue_id=issue.pk)
    assert row.action == "issue.checked_out"
    assert (row.actor_type, row.actor_id, row.run_id) == ("agent", agent.pk, run.pk)
    assert row.details == {
        "agentId": agent.pk,
        "runId": run.pk,
        "status": {"from": "todo", "to": "in_progress"},
    }


@pytest.mark.parametrize("status", ["todo", "backlog", "blocked"])
def test_agent_checkout_with_an_empty_body_defaults_to_itself_and_todo_backlog_blocked(
    client, agent, run, company, status
):
    issue = factories.IssueFactory(company=company, status=status)

    response = checkout(client, issue)

    assert response.status_code == 200, response.json()
    assert response.json()["checkoutRunId"] == wire(run)
    assert lock_of(issue) == ("in_progress", agent.pk, run.pk)


def test_in_review_issue_is_not_in_the_default_expected_statuses(client, agent, company):
    issue = factories.IssueFactory(company=company, status="in_review", assignee_agent=agent)

    response = checkout(client, issue)

    assert response.status_code == 409
    assert response.json() == conflict(issue, "in_review", agent.pk, None, False)
    assert lock_of(issue) == ("in_review", agent.pk, None)


def test_in_review_issue_is_checked_out_again_when_expected(client, agent, run, company):
    # "Changes requested": the reviewer sends it back and the agent picks it up again.
    issue = factories.IssueFactory(company=company, status="in_review", assignee_agent=agent)

    response = checkout(client, issue, {"expectedStatuses": ["in_review"]})

    assert response.status_code == 200, response.json()
    assert lock_of(issue) == ("in_progress", agent.pk, run.pk)


def test_issue_in_an_unexpected_status_gets_409(client, agent, company):
    issue = factories.IssueFactory(company=company, status="backlog")

    response = checkout(client, issue, {"expectedStatuses": ["todo"]})

    assert response.status_code == 409
    assert response.json() == conflict(issue, "backlog", None, None, False)
    assert lock_of(issue) == ("backlog", None, None)
    assert actions(issue) == []


def test_checkout_by_identifier_claims_the_same_issue(client, agent, run, company):
    issue = factories.IssueFactory(company=company, status="todo")

    response = client.post(f"/api/issues/{issue.identifier.lower()}/checkout", {}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["id"] == wire(issue)
    assert lock_of(issue) == ("in_progress", agent.pk, run.pk)


# -- the same run again -------------------------------------------------------------------------


def test_same_run_checking_out_again_gets_200_unchanged_and_logs_nothing_more(
    client, agent, run, company
):
    issue = factories.IssueFactory(company=company, status="todo")
    first = checkout(client, issue)
    assert first.status_code == 200, first.json()
    issue.refresh_from_db()
    version, started_at = issue.version, issue.started_at

    again = checkout(client, issue, {"expectedStatuses": ["todo", "in_progress"]})

    assert again.status_code == 200, again.json()
    assert again.json() == first.json()
    issue.refresh_from_db()
    assert (issue.status, issue.checkout_run_id, issue.version, issue.started_at) == (
        "in_progress",
        run.pk,
        version,
        started_at,
    )
    assert actions(issue) == ["issue.checked_out"]


# -- adopting a stale lock (the same agent's new run) -------------------------------------------


def dead_run(agent: Agent, how: str) -> HeartbeatRun:
    """A run that is no longer live: finished in some way, or still running with its lease gone."""
    if how == "lease_expired":
        return factories.HeartbeatRunFactory(
            agent=agent,
            status=HeartbeatRun.Status.RUNNING,
            lease_expires_at=timezone.now() - timedelta(seconds=1),
        )
    return factories.HeartbeatRunFactory(agent=agent, status=how, finished_at=timezone.now())


@pytest.mark.parametrize("how", ["succeeded", "failed", "cancelled", "timed_out", "lease_expired"])
def test_new_run_adopts_the_lock_of_its_agents_dead_run_when_expecting_in_progress(
    client, agent, run, company, how
):
    old = dead_run(agent, how)
    issue = factories.IssueFactory(
        company=company,
        status="in_progress",
        assignee_agent=agent,
        checkout_run=old,
        started_at=timezone.now() - timedelta(hours=1),
    )
    started_at = issue.started_at

    response = checkout(client, issue, {"agentId": agent.pk, "expectedStatuses": ["in_progress"]})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["assigneeAgentId"], body["checkoutRunId"]) == (
        "in_progress",
        wire(agent),
        wire(run),
    )
    issue.refresh_from_db()
    assert (issue.checkout_run_id, issue.started_at) == (run.pk, started_at)
    [row] = ActivityEvent.objects.filter(issue_id=issue.pk)
    assert row.action == "issue.checkout_lock_adopted"
    assert (row.actor_type, row.actor_id, row.run_id) == ("agent", agent.pk, run.pk)
    assert row.details == {"agentId": agent.pk, "runId": run.pk, "previousRunId": old.pk}


def test_new_run_without_in_progress_expected_gets_409_saying_the_holder_is_not_live(
    client, agent, company
):
    old = dead_run(agent, "succeeded")
    issue = factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=agent, checkout_run=old
    )

    response = checkout(client, issue)  # default: todo, backlog, blocked

    assert response.status_code == 409
    assert response.json() == conflict(issue, "in_progress", agent.pk, old.pk, False)
    assert lock_of(issue) == ("in_progress", agent.pk, old.pk)
    assert actions(issue) == []


def test_new_run_cannot_take_over_its_agents_other_live_run(client, agent, company):
    other_run = live_run(agent)
    issue = factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=agent, checkout_run=other_run
    )

    response = checkout(client, issue, {"expectedStatuses": ["in_progress"]})

    assert response.status_code == 409
    assert response.json() == conflict(issue, "in_progress", agent.pk, other_run.pk, True)
    assert lock_of(issue) == ("in_progress", agent.pk, other_run.pk)


def test_unowned_in_progress_issue_the_board_started_is_taken_by_the_agents_checkout(
    board, client, agent, run, company
):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)
    started = board.patch(f"/api/issues/{issue.pk}", {"status": "in_progress"}, format="json")
    assert started.status_code == 200, started.json()
    assert started.json()["checkoutRunId"] is None
    issue.refresh_from_db()
    started_at = issue.started_at

    response = checkout(client, issue)  # default expectedStatuses do not name in_progress

    assert response.status_code == 200, response.json()
    assert response.json()["checkoutRunId"] == wire(run)
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id, issue.checkout_run_id, issue.started_at) == (
        "in_progress",
        agent.pk,
        run.pk,
        started_at,
    )
    [row] = ActivityEvent.objects.filter(issue_id=issue.pk, run_id=run.pk)
    assert row.action in {"issue.checked_out", "issue.checkout_lock_adopted"}


# -- other agents' issues -----------------------------------------------------------------------


def test_another_agents_live_lock_gets_409_naming_the_holder(client, agent, peer, company):
    holder = live_run(peer)
    issue = factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=peer, checkout_run=holder
    )

    response = checkout(client, issue, {"expectedStatuses": ["todo", "in_progress"]})

    assert response.status_code == 409
    assert response.json() == conflict(issue, "in_progress", peer.pk, holder.pk, True)
    assert lock_of(issue) == ("in_progress", peer.pk, holder.pk)
    assert actions(issue) == []


def test_another_agents_stale_lock_is_still_409(client, agent, peer, company):
    holder = dead_run(peer, "failed")
    issue = factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=peer, checkout_run=holder
    )

    response = checkout(client, issue, {"expectedStatuses": ["in_progress"]})

    assert response.status_code == 409
    assert response.json() == conflict(issue, "in_progress", peer.pk, holder.pk, False)
    assert lock_of(issue) == ("in_progress", peer.pk, holder.pk)


def test_todo_issue_assigned_to_another_agent_gets_409(client, agent, peer, company):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=peer)

    response = checkout(client, issue)

    assert response.status_code == 409
    assert response.json() == conflict(issue, "todo", peer.pk, None, False)
    assert lock_of(issue) == ("todo", peer.pk, None)
    assert actions(issue) == []


def test_issue_assigned_to_a_board_user_gets_409(client, agent, board_user, company):
    issue = factories.IssueFactory(company=company, status="todo", assignee_user=board_user)

    response = checkout(client, issue)

    assert response.status_code == 409
    assert response.json()["error"] == "Issue checkout conflict"
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_user_id, issue.assignee_agent_id) == (
        "todo",
        board_user.pk,
        None,
    )


def test_agent_checking_out_as_another_agent_gets_403(client, agent, peer, company):
    issue = factories.IssueFactory(company=company, status="todo")

    response = checkout(client, issue, {"agentId": peer.pk})

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert lock_of(issue) == ("todo", None, None)
    assert actions(issue) == []


# -- done issues, paused projects and agents ----------------------------------------------------


@pytest.mark.parametrize("status", ["done", "cancelled", "failed"])
def test_checkout_of_a_finished_issue_gets_409(client, agent, company, status):
    issue = factories.IssueFactory(company=company, status=status, assignee_agent=agent)

    response = checkout(client, issue, {"expectedStatuses": ["todo", "in_progress"]})

    assert response.status_code == 409
    assert response.json() == conflict(issue, status, agent.pk, None, False)
    assert lock_of(issue) == (status, agent.pk, None)


def test_checkout_in_a_paused_project_gets_409_project_is_paused(client, agent, company):
    project = factories.ProjectFactory(
        company=company, status=Project.Status.IN_PROGRESS, paused_at=timezone.now()
    )
    issue = factories.IssueFactory(company=company, status="todo", project=project)

    response = checkout(client, issue)

    assert response.status_code == 409
    assert response.json()["error"] == "Project is paused"
    assert lock_of(issue) == ("todo", None, None)
    assert actions(issue) == []


def test_paused_agent_cannot_check_out(company):
    sleeper = factories.AgentFactory(company=company, name="Sleeper", status=Agent.Status.PAUSED)
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=sleeper)

    response = checkout(agent_client(sleeper, live_run(sleeper)), issue)

    assert response.status_code == 403
    assert response.json()["error"] == "Agent is not active"
    assert lock_of(issue) == ("todo", sleeper.pk, None)


def test_agent_checkout_without_a_run_id_gets_401_agent_run_id_required(agent, company):
    issue = factories.IssueFactory(company=company, status="todo")

    response = checkout(agent_client(agent), issue)

    assert response.status_code == 401
    assert response.json() == {"error": "Agent run id required", "code": "run_id_required"}
    assert lock_of(issue) == ("todo", None, None)


# -- the board ----------------------------------------------------------------------------------


def test_board_checkout_without_agent_id_gets_400_naming_agent_id(board, company):
    issue = factories.IssueFactory(company=company, status="todo")

    response = checkout(board, issue)

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["code"]) == ("Validation failed", "validation_error")
    assert list(body["details"]) == ["agentId"]
    assert lock_of(issue) == ("todo", None, None)


def test_board_checks_out_for_an_agent_and_wakes_it(board, board_user, agent, company):
    issue = factories.IssueFactory(company=company, status="todo")

    response = checkout(board, issue, {"agentId": agent.pk})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["assigneeAgentId"], body["checkoutRunId"]) == (
        "in_progress",
        wire(agent),
        None,  # the board has no run; the agent's first checkout takes the lock
    )
    assert body["startedAt"] is not None
    [wake] = WakeupRequest.objects.filter(agent=agent)
    assert (wake.reason, wake.requested_by_type, wake.requested_by_id) == (
        "issue_checked_out",
        "user",
        board_user.pk,
    )
    assert (wake.run.status, wake.run.issue_id) == ("queued", issue.pk)
    [row] = ActivityEvent.objects.filter(issue_id=issue.pk, action="issue.checked_out")
    assert (row.actor_type, row.actor_id) == ("user", board_user.pk)


def test_agent_woken_by_the_boards_checkout_takes_the_lock_with_its_run(board, agent, company):
    issue = factories.IssueFactory(company=company, status="todo")
    assert checkout(board, issue, {"agentId": agent.pk}).status_code == 200
    woken = WakeupRequest.objects.get(agent=agent).run

    response = checkout(agent_client(agent, woken), issue)

    assert response.status_code == 200, response.json()
    assert lock_of(issue) == ("in_progress", agent.pk, woken.pk)


def test_board_checkout_for_another_companys_agent_gets_400(board, company, other_agent):
    issue = factories.IssueFactory(company=company, status="todo")

    response = checkout(board, issue, {"agentId": other_agent.pk})

    assert response.status_code == 400
    assert list(response.json()["details"]) == ["agentId"]
    assert lock_of(issue) == ("todo", None, None)


# -- the request body ---------------------------------------------------------------------------


def test_run_id_in_the_body_gets_400(client, agent, run, company):
    issue = factories.IssueFactory(company=company, status="todo")

    response = checkout(client, issue, {"agentId": agent.pk, "runId": run.pk})

    assert response.status_code == 400
    assert list(response.json()["details"]) == ["runId"]
    assert lock_of(issue) == ("todo", None, None)


@pytest.mark.parametrize("expected", [["done"], ["todo", "cancelled"], ["failed"], ["sideways"]])
def test_expected_statuses_naming_a_terminal_or_unknown_status_gets_400(client, company, expected):
    issue = factories.IssueFactory(company=company, status="todo")

    response = checkout(client, issue, {"expectedStatuses": expected})

    assert response.status_code == 400
    assert list(response.json()["details"]) == ["expectedStatuses"]
    assert lock_of(issue) == ("todo", None, None)


def test_empty_expected_statuses_gets_400(client, company):
    issue = factories.IssueFactory(company=company, status="todo")

    response = checkout(client, issue, {"expectedStatuses": []})

    assert response.status_code == 400
    assert list(response.json()["details"]) == ["expectedStatuses"]


# -- tenancy and bad ids ------------------------------------------------------------------------


def test_checkout_of_another_companys_issue_is_404(client, other_company):
    theirs = factories.IssueFactory(company=other_company, status="todo")

    response = checkout(client, theirs)

    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "code": "not_found"}
    assert lock_of(theirs) == ("todo", None, None)


@pytest.mark.parametrize("ref", ["iss_00000000000000000000000000", "ACM-999", "nonsense"])
def test_checkout_of_an_unknown_issue_is_404(client, company, ref):
    response = client.post(f"/api/issues/{ref}/checkout", {}, format="json")

    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "code": "not_found"}
