"""Claiming a task under real concurrency (DESIGN §3, §8), on PostgreSQL.

A claim is one compare-and-set UPDATE, so of twenty agents claiming one queued task at the same
moment (threads on their own connections, lined up on a barrier) exactly one gets 201 and
becomes the assignee; the other nineteen get 409 `lease_conflict` naming the winner's run, and
their runs are never written.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from agents.models import HeartbeatRun
from companies.models import ActivityEvent
from issues.models import Issue, Status
from tests import factories
from tests.conftest import client_for
from tests.issues.test_protocol_races import key_of, race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

RACERS = 20


def test_twenty_agents_claiming_one_queued_task_get_one_201_and_nineteen_409s(company):
    agents = [factories.AgentFactory(company=company, name=f"Racer{i}") for i in range(RACERS)]
    clients = [client_for(key_of(agent)) for agent in agents]
    issue = factories.IssueFactory(company=company, status=Status.BACKLOG)
    url = f"/v1/companies/{company.pk}/issues/{issue.pk}/runs"

    def attempt(i: int, barrier: threading.Barrier):
        barrier.wait()
        response = clients[i].post(url, {}, format="json")
        return response.status_code, response.json()

    results = race(RACERS, attempt)

    assert Counter(status for status, _ in results) == {201: 1, 409: RACERS - 1}, results
    [(winner, run)] = [
        (i, body["data"]) for i, (status, body) in enumerate(results) if status == 201
    ]
    assert (run["agentId"], run["fencingToken"]) == (agents[winner].pk, 1)
    for status, body in results:
        if status == 409:
            assert body["error"]["code"] == "lease_conflict"
            assert body["error"]["details"]["runId"] == run["id"]
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id, issue.checkout_run_id, issue.claim_count) == (
        Status.IN_PROGRESS,
        agents[winner].pk,
        run["id"],
        1,
    )
    # The losers' runs rolled back with their requests: one run, one activity row.
    assert list(HeartbeatRun.objects.values_list("pk", flat=True)) == [run["id"]]
    assert ActivityEvent.objects.filter(issue_id=issue.pk, action="issue.started").count() == 1
    assert Issue.objects.filter(pk=issue.pk, claim_count=1).exists()
