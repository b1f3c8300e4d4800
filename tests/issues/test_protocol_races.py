"""The work protocol under real concurrency (DESIGN §3), on PostgreSQL.

Each racer is a thread with its own database connection, lined up on a barrier so the requests
hit the database together. Checkout is one compare-and-set UPDATE, so exactly one of N runs wins
and the rest get 409 naming the winner; lock cleanup claims rows with SKIP LOCKED, so two
cleanups running at once release each stale lock exactly once. Also here: a run that dies
mid-work, end to end through the API, and what its agent's next run (or the cleanup) does.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from agents.models import Agent, HeartbeatRun
from companies.models import ActivityEvent
from issues.models import Issue
from tests import factories
from tests.conftest import client_for
from tests.factories import live_run
from tests.wire import stored, wire

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CHECKED_OUT = "issue.checked_out"
ADOPTED = "issue.checkout_lock_adopted"
RELEASED = "issue.stale_lock_released"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def race(n: int, work: Callable[[int, threading.Barrier], Any]) -> list[Any]:
    """Run `work(i, barrier)` in n threads at once; answers their results in thread order.

    A thread's exception fails the test; every thread closes its own connection.
    """
    barrier = threading.Barrier(n, timeout=30)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            results[i] = work(i, barrier)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            barrier.abort()
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    if errors:
        raise errors[0]
    return results


def key_of(agent: Agent) -> str:
    # One key per racer: a shared key's first use stamps its row, and that row lock would line
    # the requests up one after another before they reach the issue.
    return factories.AgentApiKeyFactory(agent=agent).token


def expire(run_id: str) -> None:
    """The run's process died: nobody renews its lease any more."""
    HeartbeatRun.objects.filter(pk=run_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def checkout(client, issue: Issue, expected: list[str] | None = None):
    body = {"expectedStatuses": expected} if expected else {}
    return client.post(f"/api/issues/{issue.pk}/checkout", body, format="json")


# -- (a) twenty agents, one issue ---------------------------------------------------------------

RACERS = 20


def test_twenty_agents_checking_out_one_issue_at_once_get_one_200_and_nineteen_409s(company):
    agents = [factories.AgentFactory(company=company, name=f"Racer{i}") for i in range(RACERS)]
    runs = [live_run(agent) for agent in agents]
    clients = [client_for(key_of(a), run_id=r.pk) for a, r in zip(agents, runs, strict=True)]
    issue = factories.IssueFactory(company=company, status="todo")

    def attempt(i: int, barrier: threading.Barrier):
        barrier.wait()
        response = checkout(clients[i], issue, ["todo"])
        return response.status_code, response.json()

    results = race(RACERS, attempt)

    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 1, 409: RACERS - 1}, results
    [winner] = [i for i, (status, _) in enumerate(results) if status == 200]
    winner_agent, winner_run = agents[winner], runs[winner]
    assert results[winner][1]["checkoutRunId"] == wire(winner_run)
    expected_conflict = {
        "error": "Issue checkout conflict",
        "code": "checkout_conflict",
        "details": {
            "issueId": wire(issue),
            "status": "in_progress",
            "assigneeAgentId": wire(winner_agent),
            "checkoutRunId": wire(winner_run),
            "holderRunIsLive": True,
        },
    }
    assert all(body == expected_conflict for status, body in results if status == 409), results

    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id, issue.checkout_run_id) == (
        "in_progress",
        winner_agent.pk,
        winner_run.pk,
    )
    [row] = ActivityEvent.objects.filter(issue_id=issue.pk, action=CHECKED_OUT)
    assert (row.actor_id, row.run_id) == (winner_agent.pk, winner_run.pk)
    assert ActivityEvent.objects.filter(issue_id=issue.pk).count() == 1


# -- (b) two cleanups at once -------------------------------------------------------------------

STALE = 30


def test_two_cleanups_at_once_release_each_stale_lock_exactly_once(company, agent, other_agent):
    issues = []
    for i in range(STALE):
        owner = agent if i % 3 else other_agent  # two companies, one sweep
        if i % 2:
            run = factories.HeartbeatRunFactory(
                agent=owner,
                status="running",
                lease_expires_at=timezone.now() - timedelta(minutes=1),
            )
        else:
            run = factories.HeartbeatRunFactory(
                agent=owner, status="succeeded", finished_at=timezone.now()
            )
        issues.append(
            factories.IssueFactory(
                company=owner.company, status="in_progress", assignee_agent=owner, checkout_run=run
            )
        )
    live = live_run(agent)
    live_issue = factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=agent, checkout_run=live
    )
    expired_runs = HeartbeatRun.objects.expired().count()

    def sweep(i: int, barrier: threading.Barrier) -> dict:
        out = StringIO()
        barrier.wait()
        call_command("release_stale_locks", "--json", stdout=out)
        return json.loads(out.getvalue())

    summaries = race(2, sweep)

    assert sum(s["releasedLocks"] for s in summaries) == STALE, summaries
    assert sum(s["timedOutRuns"] for s in summaries) == expired_runs == STALE // 2
    released_ids = [entry["issueId"] for s in summaries for entry in s["issues"]]
    assert sorted(released_ids) == sorted(issue.pk for issue in issues)
    rows = ActivityEvent.objects.filter(action=RELEASED)
    assert Counter(rows.values_list("issue_id", flat=True)) == {issue.pk: 1 for issue in issues}
    for issue in issues:
        issue.refresh_from_db()
        assert (issue.status, issue.checkout_run_id) == ("todo", None)
        assert issue.assignee_agent_id is not None  # kept for the agent's next run
    assert not HeartbeatRun.objects.expired().exists()
    assert HeartbeatRun.objects.filter(status="timed_out").count() == STALE // 2
    live_issue.refresh_from_db()
    assert (live_issue.status, live_issue.checkout_run_id) == ("in_progress", live.pk)


# -- (c) a run dies mid-work --------------------------------------------------------------------


@pytest.fixture
def crashed(board, agent, company):
    """The board wakes the agent for an issue; its run starts, checks the issue out, and dies."""
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)
    woken = board.post(
        f"/api/agents/{agent.pk}/wakeup", {"payload": {"taskId": issue.pk}}, format="json"
    )
    assert woken.status_code == 202, woken.json()
    run_id, token = stored(woken.json()["id"], HeartbeatRun), woken.json()["runToken"]
    worker = client_for(token)
    assert worker.post(f"/api/heartbeat-runs/{run_id}/start", format="json").status_code == 200
    taken = checkout(worker, issue)
    assert taken.status_code == 200, taken.json()
    assert taken.json()["checkoutRunId"] == wire(run_id)
    expire(run_id)
    return issue, run_id


def next_run(board, agent: Agent, issue: Issue) -> dict:
    woken = board.post(
        f"/api/agents/{agent.pk}/wakeup", {"payload": {"taskId": issue.pk}}, format="json"
    )
    assert woken.status_code == 202, woken.json()
    return woken.json()


def test_next_run_of_the_agent_adopts_the_lock_its_dead_run_left(board, agent, crashed):
    issue, dead_run = crashed
    successor = next_run(board, agent, issue)
    successor_id = stored(successor["id"], HeartbeatRun)
    assert successor_id != dead_run
    worker = client_for(successor["runToken"])

    refused = checkout(worker, issue)  # without in_progress expected: 409, holder not live
    adopted = checkout(worker, issue, ["in_progress"])

    assert refused.status_code == 409
    assert refused.json()["details"]["holderRunIsLive"] is False
    assert adopted.status_code == 200, adopted.json()
    assert (adopted.json()["status"], adopted.json()["checkoutRunId"]) == (
        "in_progress",
        successor["id"],
    )
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id, issue.checkout_run_id) == (
        "in_progress",
        agent.pk,
        successor_id,
    )
    [row] = ActivityEvent.objects.filter(issue_id=issue.pk, action=ADOPTED)
    assert (row.run_id, row.details["previousRunId"]) == (successor_id, dead_run)


def test_cleanup_releases_the_lock_once_the_dead_runs_lease_expired(agent, crashed):
    issue, dead_run = crashed

    out = StringIO()
    call_command("release_stale_locks", "--json", stdout=out)

    summary = json.loads(out.getvalue())
    assert (summary["timedOutRuns"], summary["releasedLocks"]) == (1, 1)
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id, issue.checkout_run_id) == (
        "todo",
        agent.pk,  # kept: the agent's next run picks it up
        None,
    )
    run = HeartbeatRun.objects.get(pk=dead_run)
    assert (run.status, run.exit_reason) == ("timed_out", "lease_expired")
    assert ActivityEvent.objects.filter(issue_id=issue.pk, action=RELEASED).count() == 1


def test_cleanup_leaves_the_lock_alone_while_the_lease_holds(agent, company):
    run = live_run(agent)
    issue = factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=agent, checkout_run=run
    )

    call_command("release_stale_locks", stdout=StringIO())

    issue.refresh_from_db()
    assert (issue.status, issue.checkout_run_id) == ("in_progress", run.pk)
    run.refresh_from_db()
    assert run.status == "running"


# -- (d) two new runs of one agent adopt the same stale lock ------------------------------------

ROUNDS = 10


def test_two_new_runs_of_one_agent_racing_to_adopt_a_stale_lock_one_wins(agent, company):
    issues = []
    for _ in range(ROUNDS):
        dead = live_run(agent)
        expire(dead.pk)
        issues.append(
            factories.IssueFactory(
                company=company, status="in_progress", assignee_agent=agent, checkout_run=dead
            )
        )
    runs = [live_run(agent), live_run(agent)]
    clients = [client_for(key_of(agent), run_id=run.pk) for run in runs]

    def adopt_each(i: int, barrier: threading.Barrier) -> list[tuple[int, dict]]:
        answers = []
        for issue in issues:
            barrier.wait()  # both runs go for the same issue at the same moment
            response = checkout(clients[i], issue, ["in_progress"])
            answers.append((response.status_code, response.json()))
        return answers

    first, second = race(2, adopt_each)

    for issue, a, b in zip(issues, first, second, strict=True):
        assert sorted([a[0], b[0]]) == [200, 409], (a, b)
        winner = 0 if a[0] == 200 else 1
        loser_body = (b if winner == 0 else a)[1]
        assert loser_body["details"]["checkoutRunId"] == wire(runs[winner])
        assert loser_body["details"]["holderRunIsLive"] is True
        issue.refresh_from_db()
        assert (issue.status, issue.checkout_run_id) == ("in_progress", runs[winner].pk)
        assert ActivityEvent.objects.filter(issue_id=issue.pk, action=ADOPTED).count() == 1


# -- adoption racing the cleanup ----------------------------------------------------------------


def test_adoption_and_cleanup_racing_for_one_stale_lock_do_not_both_act(agent, company):
    issues = []
    for _ in range(ROUNDS):
        dead = live_run(agent)
        expire(dead.pk)
        issues.append(
            factories.IssueFactory(
                company=company, status="in_progress", assignee_agent=agent, checkout_run=dead
            )
        )
    successor = live_run(agent)
    worker = client_for(key_of(agent), run_id=successor.pk)

    def act(i: int, barrier: threading.Barrier):
        barrier.wait()
        if i == 0:
            return [checkout(worker, issue, ["in_progress"]).status_code for issue in issues]
        out = StringIO()
        call_command("release_stale_locks", "--json", stdout=out)
        return json.loads(out.getvalue())

    adoptions, summary = race(2, act)

    released = {entry["issueId"] for entry in summary["issues"]}
    for issue, status in zip(issues, adoptions, strict=True):
        issue.refresh_from_db()
        adopted_rows = ActivityEvent.objects.filter(issue_id=issue.pk, action=ADOPTED).count()
        released_rows = ActivityEvent.objects.filter(issue_id=issue.pk, action=RELEASED).count()
        if status == 200:  # the new run took it first: the cleanup must leave it alone
            assert issue.pk not in released
            assert (issue.status, issue.checkout_run_id) == ("in_progress", successor.pk)
            assert (adopted_rows, released_rows) == (1, 0)
        else:  # the cleanup released it first: back to todo, for a checkout from todo
            assert status == 409
            assert issue.pk in released
            assert (issue.status, issue.assignee_agent_id, issue.checkout_run_id) == (
                "todo",
                agent.pk,
                None,
            )
            assert (adopted_rows, released_rows) == (0, 1)
