"""Ten runs of one agent report costs at once across its budget line (DESIGN §10), on
PostgreSQL: the crossing is decided under the agent's row lock, so the agent is paused exactly
once and exactly one override approval waits for the board, whatever the interleaving."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from agents.models import Agent
from companies.models import ActivityEvent
from issues.models import Approval, CostEvent, Event
from tests import factories
from tests.conftest import client_for
from tests.issues.test_budgets import live_run
from tests.issues.test_protocol_races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

RUNS = 10


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_ten_runs_reporting_at_once_across_the_line_pause_the_agent_once(company):
    agent = factories.AgentFactory(company=company, name="Spender", budget_monthly_cents=1000)
    runs = [live_run(agent) for _ in range(RUNS)]
    # One key per racer: a shared key's first use stamps its row and would line them up.
    clients = [client_for(factories.AgentApiKeyFactory(agent=agent).token, run.pk) for run in runs]

    def report(i: int, barrier: threading.Barrier):
        barrier.wait()
        response = clients[i].post(
            f"/api/heartbeat-runs/{runs[i].pk}/finish",
            {"status": "succeeded", "usage": {"costCents": 250}},
            format="json",
        )
        return response.status_code, response.json()

    results = race(RUNS, report)

    # Reports that reached the database before the stop are recorded; later ones are told the
    # budget is exhausted (or that the stop cancelled their run). None fails otherwise.
    statuses = Counter(status for status, _ in results)
    assert set(statuses) <= {200, 409}, results
    assert all(
        body["code"] in {"budget_exhausted", "run_finished"}
        for status, body in results
        if status == 409
    ), results
    recorded = CostEvent.objects.filter(agent=agent).count()
    assert recorded == statuses[200] >= 4  # the line is 4 reports away
    agent.refresh_from_db()
    assert (agent.status, agent.pause_reason) == (Agent.Status.PAUSED, "budget")
    assert ActivityEvent.objects.filter(action="agent.paused", entity_id=agent.pk).count() == 1
    assert Approval.objects.filter(type=Approval.Type.BUDGET_OVERRIDE_REQUIRED).count() == 1
    levels = [
        event.payload["data"]["budget"]["level"]
        for event in Event.objects.filter(type="budget.breached")
    ]
    assert sorted(levels) == ["hard", "soft"]
