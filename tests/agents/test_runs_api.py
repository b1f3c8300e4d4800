"""Runs over HTTP (DESIGN §3): waking an agent, a run's life (start, heartbeat, finish, the
board's cancel), and reading runs by id, by company and by issue.

A wakeup answers 202 with the run (queued, with a lease and a run token); wakes for the same
issue merge into the agent's queued run; an idempotency key answers the first run. Finishing a
run leaves the locks it holds in place, now stale.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Agent, HeartbeatRun, WakeupRequest
from companies.models import ActivityEvent
from tests import factories
from tests.conftest import client_for
from tests.factories import live_run
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db

RUN_FIELDS = {
    "id",
    "companyId",
    "agentId",
    "status",
    "invocationSource",
    "wakeReason",
    "issueId",
    "context",
    "createdAt",
    "startedAt",
    "finishedAt",
    "leaseExpiresAt",
    "isLive",
    "cancelRequested",
    "error",
    "exitReason",
    "usage",
    "result",
    "exitCode",
}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def agent_client(agent: Agent, run: HeartbeatRun | None = None):
    return client_for(factories.AgentApiKeyFactory(agent=agent).token, run_id=run and run.pk)


def wake(client, agent: Agent, body: dict | None = None):
    return client.post(f"/api/agents/{agent.pk}/wakeup", body or {}, format="json")


def run_verb(client, run_id: str, verb: str, body: dict | None = None):
    return client.post(f"/api/heartbeat-runs/{run_id}/{verb}", body or {}, format="json")


@pytest.fixture
def peer(company):
    return factories.AgentFactory(company=company, name="Rival")


@pytest.fixture
def client(agent):
    return agent_client(agent)


# -- waking -------------------------------------------------------------------------------------


def test_board_wakes_an_agent_and_gets_202_with_a_queued_run_and_its_token(
    board, board_user, agent, settings
):
    before = timezone.now()

    response = wake(board, agent, {"reason": "check the queue"})

    assert response.status_code == 202, response.json()
    body = response.json()
    assert set(body) == RUN_FIELDS | {"runToken"}
    assert (body["agentId"], body["status"], body["invocationSource"], body["wakeReason"]) == (
        wire(agent),
        "queued",
        "on_demand",
        "check the queue",
    )
    assert (body["isLive"], body["cancelRequested"], body["startedAt"]) == (True, False, None)
    lease = timedelta(seconds=settings.PAPERCLIP_LEASE_SECONDS)
    assert before + lease <= parse_time(body["leaseExpiresAt"]) <= timezone.now() + lease
    assert body["runToken"].count(".") == 2
    run = HeartbeatRun.objects.get(pk=stored(body["id"], HeartbeatRun))
    assert body["id"] == wire(run)
    assert (run.agent_id, run.company_id, run.status) == (agent.pk, agent.company_id, "queued")
    [request] = WakeupRequest.objects.filter(agent=agent)
    assert (request.run_id, request.requested_by_type, request.requested_by_id) == (
        run.pk,
        "user",
        board_user.pk,
    )
    assert request.coalesced is False
    [row] = ActivityEvent.objects.filter(entity_id=run.pk)
    assert row.action == "agent.woken"


def test_agent_wakes_itself(client, agent):
    response = wake(client, agent)

    assert response.status_code == 202, response.json()
    assert response.json()["agentId"] == wire(agent)
    [request] = WakeupRequest.objects.filter(agent=agent)
    assert (request.requested_by_type, request.requested_by_id) == ("agent", agent.pk)


def test_agent_waking_another_agent_gets_403(client, peer):
    response = wake(client, peer)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert not HeartbeatRun.objects.filter(agent=peer).exists()
    assert not WakeupRequest.objects.exists()


@pytest.mark.parametrize("status", ["paused", "terminated", "pending_approval"])
def test_board_waking_an_agent_that_may_not_work_gets_409(board, company, status):
    sleeper = factories.AgentFactory(company=company, name="Sleeper", status=status)

    response = wake(board, sleeper)

    assert response.status_code == 409
    assert response.json() == {
        "error": f"Agent is {status} and cannot be woken",
        "code": "agent_not_wakeable",
        "details": {"agentId": wire(sleeper), "status": status},
    }
    assert not HeartbeatRun.objects.filter(agent=sleeper).exists()


def test_paused_agent_waking_itself_gets_403(company):
    sleeper = factories.AgentFactory(company=company, name="Sleeper", status="paused")

    response = wake(agent_client(sleeper), sleeper)

    assert response.status_code == 403
    assert not HeartbeatRun.objects.filter(agent=sleeper).exists()


def test_terminated_agents_key_is_refused_401(board, agent):
    key = factories.AgentApiKeyFactory(agent=agent).token
    assert board.post(f"/api/agents/{agent.pk}/terminate", format="json").status_code == 200

    response = wake(client_for(key), agent)

    assert response.status_code == 401
    assert not HeartbeatRun.objects.filter(agent=agent).exists()


def test_same_idempotency_key_twice_answers_the_same_run(board, agent):
    first = wake(board, agent, {"idempotencyKey": "nightly-2025-01-01"})
    # A different issue would otherwise get its own run: the key alone decides.
    issue = factories.IssueFactory(company=agent.company)
    second = wake(
        board, agent, {"idempotencyKey": "nightly-2025-01-01", "payload": {"taskId": issue.pk}}
    )

    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json()["id"] == first.json()["id"]
    assert HeartbeatRun.objects.filter(agent=agent).count() == 1
    assert WakeupRequest.objects.filter(agent=agent).count() == 1


def test_second_wake_for_the_same_issue_merges_into_the_queued_run(board, agent, company):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    first = wake(board, agent, {"reason": "assigned", "payload": {"taskId": issue.pk}})
    second = wake(board, agent, {"reason": "commented", "payload": {"taskId": issue.pk}})

    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["issueId"] == wire(issue)
    run = HeartbeatRun.objects.get(agent=agent)
    assert (run.status, run.issue_id) == ("queued", issue.pk)
    requests = list(WakeupRequest.objects.filter(agent=agent).order_by("created_at", "id"))
    assert [(r.run_id, r.coalesced) for r in requests] == [(run.pk, False), (run.pk, True)]


def test_wake_for_another_issue_gets_its_own_run(board, agent, company):
    one, two = (factories.IssueFactory(company=company, assignee_agent=agent) for _ in range(2))

    first = wake(board, agent, {"payload": {"taskId": one.pk}})
    second = wake(board, agent, {"payload": {"taskId": two.pk}})

    assert first.json()["id"] != second.json()["id"]
    assert HeartbeatRun.objects.filter(agent=agent, status="queued").count() == 2


def test_wake_after_the_run_started_gets_a_new_run(board, agent, company):
    issue = factories.IssueFactory(company=company, assignee_agent=agent)
    first = wake(board, agent, {"payload": {"taskId": issue.pk}}).json()
    assert run_verb(agent_client(agent), first["id"], "start").status_code == 200

    second = wake(board, agent, {"payload": {"taskId": issue.pk}})

    assert second.status_code == 202
    assert second.json()["id"] != first["id"]
    assert second.json()["status"] == "queued"


def test_heartbeat_invoke_wakes_on_demand(board, agent):
    response = board.post(f"/api/agents/{agent.pk}/heartbeat/invoke", format="json")

    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["status"], body["invocationSource"], body["agentId"]) == (
        "queued",
        "on_demand",
        wire(agent),
    )
    assert "runToken" in body
    assert HeartbeatRun.objects.get(pk=stored(body["id"], HeartbeatRun)).invocation_source == (
        "on_demand"
    )


# -- a run's life -------------------------------------------------------------------------------


@pytest.fixture
def queued(agent):
    return factories.HeartbeatRunFactory(agent=agent)


def test_start_moves_a_queued_run_to_running(client, queued, agent):
    before = timezone.now()

    response = run_verb(client, queued.pk, "start")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["id"], body["status"], body["isLive"]) == (wire(queued), "running", True)
    assert before <= parse_time(body["startedAt"]) <= timezone.now()
    queued.refresh_from_db()
    assert queued.status == "running"
    assert queued.started_at is not None
    agent.refresh_from_db()
    assert agent.last_heartbeat_at is not None


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled", "timed_out"])
def test_start_of_a_finished_run_gets_409(client, agent, status):
    finished = factories.HeartbeatRunFactory(agent=agent, status=status, finished_at=timezone.now())

    response = run_verb(client, finished.pk, "start")

    assert response.status_code == 409
    assert response.json() == {
        "error": f"Run is already {status}",
        "code": "run_finished",
        "details": {"runId": wire(finished), "status": status},
    }
    finished.refresh_from_db()
    assert finished.status == status


def test_heartbeat_pushes_the_lease_forward(client, agent, settings):
    run = live_run(agent, lease_expires_at=timezone.now() + timedelta(seconds=30))
    before = timezone.now()

    response = run_verb(client, run.pk, "heartbeat")

    assert response.status_code == 200, response.json()
    body = response.json()
    lease = timedelta(seconds=settings.PAPERCLIP_LEASE_SECONDS)
    assert before + lease <= parse_time(body["leaseExpiresAt"]) <= timezone.now() + lease
    assert (body["status"], body["cancelRequested"], body["isLive"]) == ("running", False, True)
    run.refresh_from_db()
    assert run.lease_expires_at == parse_time(body["leaseExpiresAt"])


def test_heartbeat_of_an_expired_run_gets_409_and_does_not_revive_it(client, agent):
    expired_at = timezone.now() - timedelta(seconds=5)
    run = live_run(agent, lease_expires_at=expired_at)

    response = run_verb(client, run.pk, "heartbeat")

    assert response.status_code == 409
    assert response.json()["code"] == "run_lease_expired"
    run.refresh_from_db()
    assert run.lease_expires_at == expired_at


def test_board_cancel_and_the_agents_next_heartbeat_says_cancel_requested(
    board, board_user, client, agent
):
    run = live_run(agent)

    cancelled = run_verb(board, run.pk, "cancel")
    heartbeat = run_verb(client, run.pk, "heartbeat")

    assert cancelled.status_code == 200, cancelled.json()
    assert (cancelled.json()["status"], cancelled.json()["cancelRequested"]) == (
        "cancelled",
        True,
    )
    assert heartbeat.status_code == 200, heartbeat.json()
    assert (heartbeat.json()["status"], heartbeat.json()["cancelRequested"]) == (
        "cancelled",
        True,
    )
    assert heartbeat.json()["isLive"] is False
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == ("cancelled", "cancelled_by_board")
    assert run.cancel_requested_at is not None and run.finished_at is not None
    row = ActivityEvent.objects.get(entity_id=run.pk, action="run.cancelled")
    assert (row.actor_type, row.actor_id) == ("user", board_user.pk)


def test_agent_cannot_cancel_a_run(client, agent):
    run = live_run(agent)

    response = run_verb(client, run.pk, "cancel")

    assert response.status_code == 403
    run.refresh_from_db()
    assert run.status == "running"


def test_cancelling_a_finished_run_gets_409(board, agent):
    run = factories.HeartbeatRunFactory(agent=agent, status="succeeded", finished_at=timezone.now())

    response = run_verb(board, run.pk, "cancel")

    assert response.status_code == 409
    assert response.json()["code"] == "run_finished"


def test_finish_records_the_outcome_and_leaves_the_held_issue_in_progress_with_a_stale_lock(
    agent, company
):
    run = live_run(agent)
    issue = factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=agent, checkout_run=run
    )
    usage = {"inputTokens": 1200, "outputTokens": 300, "costCents": 4}
    result = {"summary": "Implemented the parser; tests pass."}
    before = timezone.now()

    response = run_verb(
        agent_client(agent, run),
        run.pk,
        "finish",
        {"status": "succeeded", "usage": usage, "result": result},
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["isLive"], body["usage"], body["result"]) == (
        "succeeded",
        False,
        usage,
        result,
    )
    assert before <= parse_time(body["finishedAt"]) <= timezone.now()
    run.refresh_from_db()
    assert (run.status, run.usage, run.result) == ("succeeded", usage, result)
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id, issue.checkout_run_id) == (
        "in_progress",
        agent.pk,
        run.pk,
    )
    assert not run.is_live  # the lock is stale: the next run adopts it or cleanup releases it


@pytest.mark.parametrize("outcome", ["failed", "cancelled"])
def test_finish_with_failed_or_cancelled_records_the_error(client, agent, outcome):
    run = live_run(agent)

    response = run_verb(client, run.pk, "finish", {"status": outcome, "error": "Out of budget"})

    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["error"]) == (outcome, "Out of budget")
    run.refresh_from_db()
    assert (run.status, run.error) == (outcome, "Out of budget")


def test_finishing_a_finished_run_gets_409(client, agent):
    run = live_run(agent)
    assert run_verb(client, run.pk, "finish", {"status": "succeeded"}).status_code == 200

    again = run_verb(client, run.pk, "finish", {"status": "failed"})

    assert again.status_code == 409
    assert again.json() == {
        "error": "Run is already succeeded",
        "code": "run_finished",
        "details": {"runId": wire(run), "status": "succeeded"},
    }
    run.refresh_from_db()
    assert run.status == "succeeded"


@pytest.mark.parametrize("outcome", ["timed_out", "running", "queued", "done"])
def test_finish_with_a_status_an_agent_may_not_report_gets_400(client, agent, outcome):
    run = live_run(agent)

    response = run_verb(client, run.pk, "finish", {"status": outcome})

    assert response.status_code == 400
    assert list(response.json()["details"]) == ["status"]
    run.refresh_from_db()
    assert run.status == "running"


@pytest.mark.parametrize(("verb", "body"), [("start", {}), ("finish", {"status": "succeeded"})])
def test_another_agent_cannot_start_or_finish_a_run(agent, peer, verb, body):
    run = factories.HeartbeatRunFactory(agent=agent)

    response = run_verb(agent_client(peer), run.pk, verb, body)

    assert response.status_code == 403
    assert response.json() == {"error": "A run belongs to its agent", "code": "forbidden"}
    run.refresh_from_db()
    assert run.status == "queued"


def test_another_agent_cannot_heartbeat_a_run(agent, peer):
    near = timezone.now() + timedelta(seconds=30)
    run = live_run(agent, lease_expires_at=near)

    response = run_verb(agent_client(peer), run.pk, "heartbeat")

    assert response.status_code == 403
    run.refresh_from_db()
    assert run.lease_expires_at == near


# -- reading runs -------------------------------------------------------------------------------


def test_get_a_run_by_id(board, agent, peer):
    run = live_run(agent)

    for reader in (board, agent_client(peer)):  # the board, and any agent of the company
        response = reader.get(f"/api/heartbeat-runs/{run.pk}")
        assert response.status_code == 200, response.json()
        body = response.json()
        assert set(body) == RUN_FIELDS | {"logTail"}
        assert (body["id"], body["agentId"], body["companyId"], body["status"]) == (
            wire(run),
            wire(agent),
            wire(agent.company_id),
            "running",
        )


def test_company_runs_filter_by_agent_and_status(board, company, agent, peer, other_agent):
    mine_running = live_run(agent)
    mine_done = factories.HeartbeatRunFactory(
        agent=agent, status="succeeded", finished_at=timezone.now()
    )
    peers_running = live_run(peer)
    live_run(other_agent)  # another company's: never listed
    url = f"/api/companies/{company.pk}/heartbeat-runs"

    def ids(query: str) -> list[str]:
        response = board.get(url + query)
        assert response.status_code == 200, response.json()
        return [run["id"] for run in response.json()]

    assert ids("") == wire([peers_running, mine_done, mine_running])  # newest first
    assert ids(f"?agentId={agent.pk}") == wire([mine_done, mine_running])
    assert ids("?status=running") == wire([peers_running, mine_running])
    assert ids(f"?agentId={agent.pk}&status=running") == [wire(mine_running)]
    assert ids(f"?agentId={agent.pk}&status=timed_out") == []


def test_company_runs_list_costs_the_same_queries_for_one_run_or_many(board, company, agent):
    url = f"/api/companies/{company.pk}/heartbeat-runs"
    live_run(agent)
    board.get(url)  # warm up: the token's last use is stamped once a minute
    with CaptureQueriesContext(connection) as one:
        assert len(board.get(url).json()) == 1
    for _ in range(5):
        live_run(agent)

    with CaptureQueriesContext(connection) as six:
        assert len(board.get(url).json()) == 6

    assert len(six.captured_queries) == len(one.captured_queries)


def test_issue_runs_lists_the_runs_woken_for_it_or_that_held_its_lock_newest_first(
    board, company, agent, peer
):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)
    elsewhere = factories.IssueFactory(company=company, status="todo")
    woken = wake(board, agent, {"payload": {"taskId": issue.pk}}).json()["id"]
    unrelated = live_run(peer)
    factories.HeartbeatRunFactory(agent=peer, issue_id=elsewhere.pk)
    holder = live_run(agent)  # not woken for the issue, but it checks it out
    taken = agent_client(agent, holder).post(f"/api/issues/{issue.pk}/checkout", {}, format="json")
    assert taken.status_code == 200, taken.json()

    response = board.get(f"/api/issues/{issue.pk}/runs")

    assert response.status_code == 200, response.json()
    listed = [run["id"] for run in response.json()]
    assert listed == [wire(holder), woken]
    assert wire(unrelated) not in listed


def test_issue_runs_include_a_run_that_adopted_the_lock(board, company, agent):
    old = factories.HeartbeatRunFactory(agent=agent, status="failed", finished_at=timezone.now())
    issue = factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=agent, checkout_run=old
    )
    new = live_run(agent)
    adopted = agent_client(agent, new).post(
        f"/api/issues/{issue.pk}/checkout", {"expectedStatuses": ["in_progress"]}, format="json"
    )
    assert adopted.status_code == 200, adopted.json()

    response = board.get(f"/api/issues/{issue.pk}/runs")

    assert [run["id"] for run in response.json()] == [wire(new)]


# -- tenancy and bad ids ------------------------------------------------------------------------


def foreign_routes(other_company, other_agent) -> list[tuple[str, str, dict]]:
    run = live_run(other_agent)
    issue = factories.IssueFactory(company=other_company, status="todo")
    return [
        ("get", f"/api/heartbeat-runs/{run.pk}", {}),
        ("post", f"/api/heartbeat-runs/{run.pk}/start", {}),
        ("post", f"/api/heartbeat-runs/{run.pk}/heartbeat", {}),
        ("post", f"/api/heartbeat-runs/{run.pk}/finish", {"status": "succeeded"}),
        ("post", f"/api/heartbeat-runs/{run.pk}/cancel", {}),
        ("get", f"/api/companies/{other_company.pk}/heartbeat-runs", {}),
        ("get", f"/api/issues/{issue.pk}/runs", {}),
        ("post", f"/api/agents/{other_agent.pk}/wakeup", {}),
        ("post", f"/api/agents/{other_agent.pk}/heartbeat/invoke", {}),
    ]


def test_every_run_route_answers_404_for_another_companys_objects_to_the_board(
    board, other_company, other_agent
):
    routes = foreign_routes(other_company, other_agent)
    before = list(
        HeartbeatRun.objects.order_by("pk").values_list("pk", "status", "lease_expires_at")
    )

    for method, url, body in routes:
        response = getattr(board, method)(url, body, format="json")
        assert (method, url, response.status_code) == (method, url, 404)
        assert response.json() == {"error": "Not found", "code": "not_found"}

    after = list(
        HeartbeatRun.objects.order_by("pk").values_list("pk", "status", "lease_expires_at")
    )
    assert after == before
    assert not WakeupRequest.objects.exists()


def test_every_run_route_answers_404_for_another_companys_objects_to_an_agent(
    company, agent, other_company, other_agent
):
    routes = [r for r in foreign_routes(other_company, other_agent) if not r[1].endswith("cancel")]
    client = agent_client(agent)

    for method, url, body in routes:
        response = getattr(client, method)(url, body, format="json")
        assert (method, url, response.status_code) == (method, url, 404)

    assert not WakeupRequest.objects.exists()
    assert HeartbeatRun.objects.get(agent=other_agent).status == "running"


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("get", "/api/heartbeat-runs/run_00000000000000000000000000", {}),
        ("get", "/api/heartbeat-runs/nonsense", {}),
        ("post", "/api/heartbeat-runs/run_00000000000000000000000000/start", {}),
        ("post", "/api/heartbeat-runs/nonsense/finish", {"status": "succeeded"}),
        ("post", "/api/heartbeat-runs/run_00000000000000000000000000/cancel", {}),
        ("post", "/api/agents/agt_00000000000000000000000000/wakeup", {}),
        ("get", "/api/companies/cmp_00000000000000000000000000/heartbeat-runs", {}),
        ("get", "/api/issues/iss_00000000000000000000000000/runs", {}),
    ],
)
def test_unknown_ids_on_run_routes_are_404(board, method, url, body):
    response = getattr(board, method)(url, body, format="json")

    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "code": "not_found"}


def test_issue_runs_of_an_issue_of_the_company_by_identifier(board, company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)
    woken = wake(board, agent, {"payload": {"taskId": issue.pk}}).json()["id"]

    response = board.get(f"/api/issues/{issue.identifier}/runs")

    assert response.status_code == 200
    assert [run["id"] for run in response.json()] == [woken]
