"""`/v1` runs, read (reference 003, DESIGN §8): a task's attempts, newest first, each with its
lease history, last checkpoint, cost and exit reason. Wakes that never claimed the task are not
attempts; the `/api` heartbeat runs and these are the same rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import HeartbeatRun
from companies.authentication import board_actor
from issues.models import Status
from issues.services.verbs import issue_reassign
from tests import factories
from tests.conftest import client_for, iso

pytestmark = pytest.mark.django_db


def runs_url(company, issue) -> str:
    return f"/v1/companies/{company.pk}/issues/{issue.pk}/runs"


def attempt(agent, issue, token: int, **fields) -> HeartbeatRun:
    """A finished attempt at `issue`, as a claim leaves it."""
    started = timezone.now() - timedelta(hours=2) + timedelta(minutes=token)
    defaults = {
        "status": HeartbeatRun.Status.FAILED,
        "started_at": started,
        "finished_at": started + timedelta(minutes=1),
        "lease_acquired_at": started,
        "lease_expires_at": started + timedelta(minutes=5),
        "exit_reason": "failed",
    }
    return factories.HeartbeatRunFactory(
        agent=agent, issue_id=issue.pk, fencing_token=token, **(defaults | fields)
    )


@pytest.fixture
def issue(company, agent):
    return factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)


def test_the_list_is_the_tasks_attempts_newest_first_without_wakes(
    agent_client, company, agent, issue
):
    first = attempt(agent, issue, 1)
    second = attempt(agent, issue, 2)
    factories.HeartbeatRunFactory(agent=agent, issue_id=issue.pk)  # a wake: never claimed it
    factories.HeartbeatRunFactory(agent=agent, issue_id=None, fencing_token=7)  # another task's
    third = agent_client.post(runs_url(company, issue), {}, format="json").json()["data"]["id"]

    response = agent_client.get(runs_url(company, issue))

    assert response.status_code == 200
    body = response.json()
    assert [run["id"] for run in body["data"]] == [third, second.pk, first.pk]
    assert [run["fencingToken"] for run in body["data"]] == [1, 2, 1]
    assert (body["meta"]["nextCursor"], body["meta"]["hasMore"]) == (None, False)


def test_the_list_pages_with_a_cursor(agent_client, company, agent, issue):
    runs = [attempt(agent, issue, token) for token in (1, 2, 3)]

    first = agent_client.get(runs_url(company, issue), {"limit": 2}).json()
    second = agent_client.get(
        runs_url(company, issue), {"limit": 2, "cursor": first["meta"]["nextCursor"]}
    ).json()

    assert [run["id"] for run in first["data"]] == [runs[2].pk, runs[1].pk]
    assert first["meta"]["hasMore"] is True
    assert [run["id"] for run in second["data"]] == [runs[0].pk]
    assert second["meta"]["hasMore"] is False


def test_the_list_is_a_fixed_number_of_queries(
    board, company, agent, issue, django_assert_num_queries
):
    for token in range(1, 12):
        attempt(agent, issue, token)

    # SAVEPOINT (the request's transaction), the board token, the caller's memberships, the
    # company, the task, one page of runs, RELEASE SAVEPOINT: the same for 1 run or 11.
    with django_assert_num_queries(7):
        response = board.get(runs_url(company, issue))

    assert len(response.json()["data"]) == 11


def test_a_run_reads_as_003s_run_object_with_its_cost_and_exit(agent_client, company, agent, issue):
    run = attempt(
        agent,
        issue,
        4,
        status=HeartbeatRun.Status.SUCCEEDED,
        exit_reason="succeeded",  # finished through /api: named by how it ended
        checkpoint={"step": 5},
        usage={"inputTokens": 1200, "outputTokens": 300, "costCents": 42},
        lease_renewals=3,
        lease_renewed_at=timezone.now() - timedelta(minutes=90),
        lease_released_at=timezone.now() - timedelta(minutes=80),
        lease_release_reason="completed",
    )

    response = agent_client.get(f"{runs_url(company, issue)}/{run.pk}")

    assert response.status_code == 200
    assert response.json()["data"] == {
        "id": run.pk,
        "taskId": issue.pk,
        "agentId": agent.pk,
        "status": "succeeded",
        "startedAt": iso(run.started_at),
        "endedAt": iso(run.finished_at),
        "leaseExpiresAt": iso(run.lease_expires_at),
        "fencingToken": 4,
        "leaseHistory": [
            {
                "acquiredAt": iso(run.lease_acquired_at),
                "renewals": 3,
                "lastRenewedAt": iso(run.lease_renewed_at),
                "expiresAt": iso(run.lease_expires_at),
                "releasedAt": iso(run.lease_released_at),
                "releaseReason": "completed",
            }
        ],
        "checkpoint": {"step": 5},
        "cost": {"usd": 0.42, "inputTokens": 1200, "outputTokens": 300},
        "exitReason": "completed",
        "exitDetails": {},
        "workspaceUrl": None,
    }


def test_usage_that_is_not_numbers_costs_nothing(agent_client, company, agent, issue):
    run = attempt(agent, issue, 1, usage={"costUsd": "lots", "inputTokens": True})

    cost = agent_client.get(f"{runs_url(company, issue)}/{run.pk}").json()["data"]["cost"]

    assert cost == {"usd": 0.0, "inputTokens": 0, "outputTokens": 0}


def test_the_tasks_spent_is_the_cost_of_its_attempts_as_each_run_shows_it(
    agent_client, company, agent, issue
):
    attempt(agent, issue, 1, usage={"costUsd": 0.5, "costCents": 999})  # USD wins over cents
    attempt(agent, issue, 2, usage={"costCents": 25, "inputTokens": 10, "outputTokens": 2})
    attempt(agent, issue, 3, usage={"costUsd": "lots", "costCents": False})  # nothing
    attempt(agent, issue, 4, usage={"costUsd": -5, "inputTokens": -1})  # gives nothing back
    # A claim of another task: not its spending.
    other = factories.IssueFactory(company=company)
    attempt(agent, other, 1, usage={"costUsd": 100})

    runs = agent_client.get(runs_url(company, issue)).json()["data"]
    task = agent_client.get(f"/v1/companies/{company.pk}/issues/{issue.pk}").json()["data"]

    assert [run["cost"] for run in runs] == [
        {"usd": 0.0, "inputTokens": 0, "outputTokens": 0},
        {"usd": 0.0, "inputTokens": 0, "outputTokens": 0},
        {"usd": 0.25, "inputTokens": 10, "outputTokens": 2},
        {"usd": 0.5, "inputTokens": 0, "outputTokens": 0},
    ]
    assert task["budget"]["spent"] == {"usd": 0.75}


def test_a_finished_run_shows_the_cost_it_reported(agent_client, company, issue):
    run_id = agent_client.post(runs_url(company, issue), {}, format="json").json()["data"]["id"]

    finished = agent_client.post(
        f"/api/heartbeat-runs/{run_id}/finish",
        {"status": "succeeded", "usage": {"costUsd": 1.25, "inputTokens": 4000}},
        format="json",
    )
    run = agent_client.get(f"{runs_url(company, issue)}/{run_id}").json()["data"]

    assert finished.status_code == 200, finished.json()
    assert run["cost"] == {"usd": 1.25, "inputTokens": 4000, "outputTokens": 0}
    # finished through /api: its lease history ends there too
    [lease] = run["leaseHistory"]
    assert (lease["releasedAt"] is not None, lease["releaseReason"]) == (True, "succeeded")


def test_a_reassigned_attempt_keeps_its_checkpoint_in_the_history(
    board, board_user, company, agent, issue
):
    client = client_for(factories.AgentApiKeyFactory(agent=agent).token)
    run_id = client.post(runs_url(company, issue), {}, format="json").json()["data"]["id"]
    client.post(
        f"{runs_url(company, issue)}/{run_id}/progress", {"checkpoint": {"draft": 2}}, format="json"
    )
    peer = factories.AgentFactory(company=company, name="Peer")
    issue_reassign(actor=board_actor(board_user), issue=issue, agent=peer)

    [run] = board.get(runs_url(company, issue)).json()["data"]

    assert (run["id"], run["status"], run["exitReason"], run["checkpoint"]) == (
        run_id,
        "cancelled",
        "reassigned",
        {"draft": 2},
    )
    assert run["endedAt"] is not None


def test_another_companys_runs_are_404(
    other_client, other_board, other_company, company, agent, issue
):
    run = attempt(agent, issue, 1)

    for client in (other_client, other_board):
        for path in (runs_url(company, issue), runs_url(other_company, issue)):
            assert client.get(path).status_code == 404
            assert client.get(f"{path}/{run.pk}").status_code == 404


def test_a_bad_task_or_run_id_is_404(agent_client, company, agent, issue):
    other_task = factories.IssueFactory(company=company)
    run = attempt(agent, issue, 1)

    assert agent_client.get(f"/v1/companies/{company.pk}/issues/iss_nope/runs").status_code == 404
    for path in (
        f"{runs_url(company, issue)}/run_nope",
        f"{runs_url(company, issue)}/{issue.pk}",
        f"{runs_url(company, other_task)}/{run.pk}",
    ):
        response = agent_client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_a_task_is_addressed_by_its_identifier_too(agent_client, company, agent, issue):
    run = attempt(agent, issue, 1)

    response = agent_client.get(f"/v1/companies/{company.pk}/issues/{issue.identifier}/runs")

    assert [r["id"] for r in response.json()["data"]] == [run.pk]


def test_an_api_heartbeat_of_a_claimed_run_counts_in_its_lease_history(company, agent, issue):
    client = client_for(factories.AgentApiKeyFactory(agent=agent).token)
    run_id = client.post(runs_url(company, issue), {}, format="json").json()["data"]["id"]

    response = client.post(f"/api/heartbeat-runs/{run_id}/heartbeat", {}, format="json")

    assert response.status_code == 200, response.json()
    [lease] = client.get(f"{runs_url(company, issue)}/{run_id}").json()["data"]["leaseHistory"]
    run = HeartbeatRun.objects.get(pk=run_id)
    assert (lease["renewals"], lease["lastRenewedAt"]) == (1, iso(run.lease_renewed_at))
