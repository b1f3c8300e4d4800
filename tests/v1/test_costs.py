"""`/v1` costs (DESIGN §10): the company's spend in USD over `since`/`until` (the current UTC
month by default), in total or grouped by agent, project, task or model, in `/v1`'s envelope
with ids as stored. A bad `groupBy` or window is a 400 naming it; another company is a 404."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from agents.models import this_month
from tests import factories
from tests.conftest import iso

pytestmark = pytest.mark.django_db


def last_month():
    return this_month()[0] - timedelta(days=3)


@pytest.fixture
def spend(company, agent):
    """This month: the agent spent 42.5 cents on a task of a project and 0.42 on nothing; a
    colleague 100 with another model. Last month's 1000 counts only in its own window."""
    project = factories.ProjectFactory(company=company, name="Launch")
    task = factories.IssueFactory(company=company, project=project, title="Hero section")
    colleague = factories.AgentFactory(company=company, name="Colleague")
    factories.CostEventFactory(agent=agent, issue=task, project=project, cost_cents=Decimal("42.5"))
    factories.CostEventFactory(agent=agent, cost_cents=Decimal("0.42"), output_tokens=0)
    factories.CostEventFactory(agent=colleague, provider="openai", model="gpt-5", cost_cents=100)
    factories.CostEventFactory(agent=colleague, cost_cents=1000, occurred_at=last_month())
    return {"project": project, "task": task, "colleague": colleague}


def costs(client, company, **query):
    response = client.get(f"/v1/companies/{company.pk}/costs?{urlencode(query)}")
    assert response.status_code == 200, response.json()
    assert set(response.json()["meta"]) == {"requestId"}
    return response.json()["data"]


def test_the_total_is_this_months_spend_in_usd(board, company, spend):
    start, end = this_month()

    assert costs(board, company) == {
        "companyId": company.pk,
        "since": iso(start),
        "until": iso(end),
        "groupBy": None,
        "usd": 1.4292,
        "inputTokens": 3000,
        "outputTokens": 400,
        "events": 3,
        "groups": None,
    }


def test_since_and_until_choose_the_window(agent_client, company, spend):
    start = this_month()[0]

    data = costs(
        agent_client, company, since=(start - timedelta(days=10)).date(), until=start.isoformat()
    )

    assert (data["usd"], data["events"]) == (10.0, 1)
    assert (data["since"], data["until"]) == (iso(start - timedelta(days=10)), iso(start))


def test_grouped_by_task_names_each_task_by_its_stored_id(board, company, spend):
    task = spend["task"]

    data = costs(board, company, groupBy="task")

    assert data["groupBy"] == "task"
    assert data["groups"] == [
        {
            "taskId": None,
            "identifier": None,
            "title": None,
            "usd": 1.0042,
            "inputTokens": 2000,
            "outputTokens": 200,
            "events": 2,
        },
        {
            "taskId": task.pk,
            "identifier": task.identifier,
            "title": "Hero section",
            "usd": 0.425,
            "inputTokens": 1000,
            "outputTokens": 200,
            "events": 1,
        },
    ]


def test_grouped_by_agent_project_and_model(board, company, agent, spend):
    by = {group: costs(board, company, groupBy=group)["groups"] for group in ("agent", "project")}
    by["model"] = costs(board, company, groupBy="model")["groups"]

    assert [(row["agentId"], row["name"], row["usd"]) for row in by["agent"]] == [
        (spend["colleague"].pk, "Colleague", 1.0),
        (agent.pk, "Builder", 0.4292),
    ]
    assert [(row["projectId"], row["name"], row["usd"]) for row in by["project"]] == [
        (None, None, 1.0042),
        (spend["project"].pk, "Launch", 0.425),
    ]
    assert [(row["provider"], row["model"], row["usd"], row["events"]) for row in by["model"]] == [
        ("openai", "gpt-5", 1.0, 1),
        ("anthropic", "claude-sonnet-4", 0.4292, 2),
    ]


def test_a_company_with_no_costs_spent_nothing(board, company):
    data = costs(board, company, groupBy="agent")

    assert (data["usd"], data["events"], data["groups"]) == (0.0, 0, [])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"groupBy": "team"}, "groupBy"),
        ({"groupBy": ""}, "groupBy"),
        ({"since": "tomorrow"}, "since"),
        ({"until": "2026-04-31"}, "until"),
        ({"since": "2026-05-02", "until": "2026-05-01"}, "since"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(board, company, query, field):
    response = board.get(f"/v1/companies/{company.pk}/costs?{urlencode(query)}")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["details"]) == [field]
    assert error["requestId"] == response["X-Request-Id"]


def test_another_companys_costs_are_a_404(other_board, other_client, company, spend):
    for client in (other_board, other_client):
        response = client.get(f"/v1/companies/{company.pk}/costs?groupBy=agent")

        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_the_costs_are_one_aggregate_query_per_answer(
    board, company, spend, django_assert_num_queries
):
    # The request's savepoint and its release, the board token, the user's memberships, the
    # company, the total and the groups (names joined in, no query per row).
    with django_assert_num_queries(7):
        costs(board, company, groupBy="task")


def test_the_schema_describes_one_object_in_the_envelope(board):
    schema = board.get("/api/openapi.json").json()
    answer = schema["paths"]["/v1/companies/{company_pk}/costs"]["get"]["responses"]["200"]

    data = answer["content"]["application/json"]["schema"]["properties"]["data"]
    assert data == {"$ref": "#/components/schemas/V1Costs"}
    groups = schema["components"]["schemas"]["V1Costs"]["properties"]["groups"]
    assert groups["items"] == {"$ref": "#/components/schemas/V1CostGroup"}
