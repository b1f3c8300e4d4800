"""Costs on `/api` (DESIGN §10): an agent reports its own costs, the board any agent's of the
company; every bad input is a 400 naming the field; each report leaves a `cost.reported`
activity row. The roll-ups sum the company's costs over a window (the current UTC month unless
`from`/`to` say otherwise), each in one aggregate query; another company's costs are a 404."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from agents.models import this_month
from companies.models import ActivityEvent
from issues.models import CostEvent
from tests import factories
from tests.conftest import iso
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "Not found", "code": "not_found"}
ROLLUPS = ["summary", "by-agent", "by-project", "by-issue", "by-model"]


def report(client, company, **body):
    body = {
        "provider": "anthropic",
        "model": "claude-sonnet-4",
        "inputTokens": 1200,
        "cachedInputTokens": 300,
        "outputTokens": 450,
        "costCents": 37,
    } | body
    return client.post(f"/api/companies/{company.pk}/cost-events", body, format="json")


def last_month():
    return this_month()[0] - timedelta(days=3)


@pytest.fixture
def issue(company):
    return factories.IssueFactory(
        company=company, project=factories.ProjectFactory(company=company)
    )


# -- reporting --------------------------------------------------------------------------------


def test_an_agent_reports_its_own_cost_and_gets_the_event(agent_client, company, agent, issue):
    run = factories.HeartbeatRunFactory(agent=agent)
    occurred = timezone.now() - timedelta(minutes=5)

    response = report(
        agent_client,
        company,
        agentId=wire(agent),
        issueId=wire(issue),
        heartbeatRunId=wire(run),
        occurredAt=iso(occurred),
        billingCode="launch",
    )

    assert response.status_code == 201, response.json()
    event = CostEvent.objects.get()
    assert response.json() == {
        "id": wire(event),
        "companyId": wire(company),
        "agentId": wire(agent),
        "issueId": wire(issue),
        "projectId": wire(issue.project_id),
        "heartbeatRunId": wire(run),
        "provider": "anthropic",
        "model": "claude-sonnet-4",
        "inputTokens": 1200,
        "cachedInputTokens": 300,
        "outputTokens": 450,
        "costCents": 37,
        "billingCode": "launch",
        "occurredAt": iso(occurred),
        "createdAt": iso(event.created_at),
    }
    assert (event.cost_cents, event.occurred_at, event.project_id) == (
        Decimal(37),
        occurred,
        issue.project_id,
    )


def test_each_report_leaves_a_cost_reported_activity_row(agent_client, company, agent, issue):
    response = report(agent_client, company, agentId=wire(agent), issueId=issue.identifier)

    event_id = stored(response.json()["id"], CostEvent)
    row = ActivityEvent.objects.get(action="cost.reported")
    assert (row.company_id, row.actor_type, row.actor_id, row.entity_id, row.issue_id) == (
        company.pk,
        "agent",
        agent.pk,
        event_id,
        issue.pk,
    )
    assert row.details == {"agentId": agent.pk, "issueId": issue.pk, "costCents": 37.0}


def test_tokens_default_to_zero_and_the_time_to_now(agent_client, company, agent):
    before = timezone.now()

    response = agent_client.post(
        f"/api/companies/{company.pk}/cost-events",
        {"agentId": wire(agent), "provider": "openai", "model": "gpt-5", "costCents": 0},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["inputTokens"], body["cachedInputTokens"], body["outputTokens"]) == (0, 0, 0)
    assert (body["issueId"], body["projectId"], body["billingCode"]) == (None, None, None)
    assert before <= CostEvent.objects.get().occurred_at <= timezone.now()


def test_an_agent_may_not_report_another_agents_cost(agent_client, company):
    colleague = factories.AgentFactory(company=company, name="Colleague")

    response = report(agent_client, company, agentId=wire(colleague))

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert not CostEvent.objects.exists()
    assert not ActivityEvent.objects.filter(action="cost.reported").exists()


def test_the_board_reports_for_any_agent_of_the_company(board, company, board_user):
    colleague = factories.AgentFactory(company=company, name="Colleague")

    response = report(board, company, agentId=wire(colleague), costCents=5)

    assert response.status_code == 201, response.json()
    assert CostEvent.objects.get().agent_id == colleague.pk
    row = ActivityEvent.objects.get(action="cost.reported")
    assert (row.actor_type, row.actor_id) == ("user", board_user.pk)


# -- validation -------------------------------------------------------------------------------

MISSING = object()
BAD_BODIES = {
    "negative cost": ({"costCents": -1}, "costCents"),
    "fractional cost": ({"costCents": 1.5}, "costCents"),
    "cost as a string": ({"costCents": "10"}, "costCents"),
    "cost as a boolean": ({"costCents": True}, "costCents"),
    "cost too large for the column": ({"costCents": 10**13}, "costCents"),
    "no cost": ({"costCents": MISSING}, "costCents"),
    "a null cost": ({"costCents": None}, "costCents"),
    "negative input tokens": ({"inputTokens": -5}, "inputTokens"),
    "fractional output tokens": ({"outputTokens": 2.5}, "outputTokens"),
    "cached tokens as a string": ({"cachedInputTokens": "3"}, "cachedInputTokens"),
    "empty provider": ({"provider": ""}, "provider"),
    "blank model": ({"model": "   "}, "model"),
    "provider not a string": ({"provider": 7}, "provider"),
    "billingCode not a string": ({"billingCode": ["x"]}, "billingCode"),
    "provider too long": ({"provider": "x" * 101}, "provider"),
    "occurredAt not a datetime": ({"occurredAt": "yesterday"}, "occurredAt"),
    "agentId not an id": ({"agentId": "Builder"}, "agentId"),
    "issueId naming nothing": ({"issueId": "ACM-999"}, "issueId"),
    "heartbeatRunId not an id": ({"heartbeatRunId": 12}, "heartbeatRunId"),
    "an unknown field": ({"goalId": None}, "goalId"),
}


@pytest.mark.parametrize(("change", "field"), BAD_BODIES.values(), ids=list(BAD_BODIES))
def test_each_bad_input_is_a_400_naming_the_field(agent_client, company, agent, change, field):
    body = {
        "agentId": wire(agent),
        "provider": "anthropic",
        "model": "claude-sonnet-4",
        "costCents": 37,
    } | change
    body = {key: value for key, value in body.items() if value is not MISSING}
    response = agent_client.post(f"/api/companies/{company.pk}/cost-events", body, format="json")

    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["details"]) == [field]
    assert not CostEvent.objects.exists()


def test_ids_of_another_company_name_nothing(board, company, agent, other_agent, other_company):
    other_issue = factories.IssueFactory(company=other_company)
    other_run = factories.HeartbeatRunFactory(agent=other_agent)

    responses = [
        report(board, company, agentId=wire(other_agent)),
        report(board, company, agentId=wire(agent), issueId=wire(other_issue)),
        report(board, company, agentId=wire(agent), heartbeatRunId=wire(other_run)),
    ]

    assert [r.status_code for r in responses] == [400, 400, 400]
    assert [list(r.json()["details"]) for r in responses] == [
        ["agentId"],
        ["issueId"],
        ["heartbeatRunId"],
    ]
    assert not CostEvent.objects.exists()


def test_a_run_of_another_agent_is_refused(board, company, agent):
    colleague_run = factories.HeartbeatRunFactory(agent=factories.AgentFactory(company=company))

    response = report(board, company, agentId=wire(agent), heartbeatRunId=wire(colleague_run))

    assert response.status_code == 400
    assert list(response.json()["details"]) == ["heartbeatRunId"]


# -- tenancy ----------------------------------------------------------------------------------


def test_another_companys_costs_are_a_404(other_board, other_client, company, agent):
    factories.CostEventFactory(agent=agent)
    urls = [f"/api/companies/{company.pk}/cost-events"]
    urls += [f"/api/companies/{company.pk}/costs/{rollup}" for rollup in ROLLUPS]

    for client in (other_board, other_client):
        for url in urls:
            response = client.get(url)
            assert (response.status_code, response.json()) == (404, NOT_FOUND), url
        response = report(client, company, agentId=wire(agent))
        assert (response.status_code, response.json()) == (404, NOT_FOUND)

    assert CostEvent.objects.count() == 1


def test_a_malformed_company_id_is_a_404(board):
    response = board.get("/api/companies/not-an-id/costs/summary")

    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_costs_need_credentials(anon, company):
    response = anon.get(f"/api/companies/{company.pk}/costs/summary")

    assert response.status_code == 401


# -- the list ---------------------------------------------------------------------------------


def test_the_list_is_newest_first_and_filters_by_agent_issue_and_time(
    agent_client, company, agent, issue
):
    now = timezone.now()
    colleague = factories.AgentFactory(company=company)
    old = factories.CostEventFactory(agent=agent, occurred_at=now - timedelta(days=40))
    mine = factories.CostEventFactory(
        agent=agent, issue=issue, occurred_at=now - timedelta(hours=1)
    )
    theirs = factories.CostEventFactory(agent=colleague, occurred_at=now)
    url = f"/api/companies/{company.pk}/cost-events"

    def ids(query=""):
        response = agent_client.get(url + query)
        assert response.status_code == 200, response.json()
        return [stored(row["id"], CostEvent) for row in response.json()]

    assert ids() == [theirs.pk, mine.pk, old.pk]  # any member reads every agent's costs
    assert ids(f"?agentId={wire(agent)}") == [mine.pk, old.pk]
    assert ids(f"?issueId={issue.pk}") == [mine.pk]
    assert ids(f"?from={(now - timedelta(days=2)).date()}") == [theirs.pk, mine.pk]
    assert ids(f"?to={(now - timedelta(days=30)).date()}") == [old.pk]


def test_the_list_pages_with_a_cursor(board, company, agent):
    events = [factories.CostEventFactory(agent=agent) for _ in range(3)]
    url = f"/api/companies/{company.pk}/cost-events?limit=2"

    first = board.get(url)
    second = board.get(f"{url}&cursor={first['X-Next-Cursor']}")

    pages = [[stored(row["id"], CostEvent) for row in page.json()] for page in (first, second)]
    newest_first = sorted(events, key=lambda e: (e.occurred_at, e.pk), reverse=True)
    assert pages == [[e.pk for e in newest_first[:2]], [newest_first[2].pk]]
    assert "X-Next-Cursor" not in second


def test_the_list_query_count_does_not_grow_with_rows(
    board, company, agent, django_assert_num_queries
):
    for _ in range(5):
        factories.CostEventFactory(agent=agent)

    # The request's savepoint and its release, the board token, the user's memberships, the
    # company, and the page of cost events.
    with django_assert_num_queries(6):
        response = board.get(f"/api/companies/{company.pk}/cost-events")

    assert len(response.json()) == 5


# -- roll-ups ---------------------------------------------------------------------------------


def test_the_summary_is_this_months_spend_against_the_budget(board, company, agent):
    company.budget_monthly_cents = 1000
    company.save(update_fields=["budget_monthly_cents"])
    factories.CostEventFactory(agent=agent, cost_cents=Decimal("120.25"))
    factories.CostEventFactory(agent=agent, cost_cents=Decimal("3.5"))
    factories.CostEventFactory(agent=agent, cost_cents=500, occurred_at=last_month())

    response = board.get(f"/api/companies/{company.pk}/costs/summary")

    assert response.status_code == 200
    assert response.json() == {
        "companyId": wire(company),
        "spendCents": 124,  # 123.75, in whole cents
        "budgetCents": 1000,
        "utilizationPercent": 12.38,
    }


def test_a_window_covering_last_month_counts_its_cost(agent_client, company, agent):
    factories.CostEventFactory(agent=agent, cost_cents=500, occurred_at=last_month())
    factories.CostEventFactory(agent=agent, cost_cents=7)
    start = this_month()[0]
    window = urlencode({"from": (start - timedelta(days=10)).date(), "to": start.isoformat()})

    response = agent_client.get(f"/api/companies/{company.pk}/costs/summary?{window}")

    assert response.status_code == 200
    assert response.json()["spendCents"] == 500
    assert response.json()["utilizationPercent"] == 0  # no budget


def test_a_to_date_counts_that_whole_day(board, company, agent):
    start = this_month()[0]
    factories.CostEventFactory(agent=agent, cost_cents=9, occurred_at=start - timedelta(hours=1))

    day_before = (start - timedelta(days=1)).date()
    response = board.get(f"/api/companies/{company.pk}/costs/summary?to={day_before}")

    assert response.json()["spendCents"] == 9


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=last-tuesday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-02-30", "from"),
        ("from=2026-05-02&to=2026-05-01", "from"),
        ("from=2026-05-01T10:00:00Z&to=2026-05-01T10:00:00Z", "from"),
    ],
)
@pytest.mark.parametrize("rollup", ROLLUPS)
def test_a_bad_window_is_a_400_naming_the_parameter(board, company, rollup, query, field):
    response = board.get(f"/api/companies/{company.pk}/costs/{rollup}?{query}")

    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["details"]) == [field]


def test_a_bad_window_on_the_list_is_a_400(board, company):
    response = board.get(f"/api/companies/{company.pk}/cost-events?from=soon")

    assert (response.status_code, list(response.json()["details"])) == (400, ["from"])


@pytest.fixture
def spend(company, agent, issue):
    """This month: the agent spent 30 on the issue (project) and 5 on nothing; a colleague 50
    with another model; last month's 1000 counts in no row."""
    colleague = factories.AgentFactory(company=company, name="Colleague")
    other = factories.IssueFactory(company=company)
    for cents in (10, 20):
        factories.CostEventFactory(
            agent=agent, issue=issue, project_id=issue.project_id, cost_cents=cents
        )
    factories.CostEventFactory(agent=agent, cost_cents=5, output_tokens=0)
    factories.CostEventFactory(
        agent=colleague, issue=other, provider="openai", model="gpt-5", cost_cents=50
    )
    factories.CostEventFactory(agent=colleague, cost_cents=1000, occurred_at=last_month())
    return {"colleague": colleague, "other": other}


def rows(client, company, rollup, query=""):
    response = client.get(f"/api/companies/{company.pk}/costs/{rollup}{query}")
    assert response.status_code == 200, response.json()
    return response.json()


def test_spend_by_agent_biggest_first(agent_client, company, agent, spend):
    assert rows(agent_client, company, "by-agent") == [
        {
            "agentId": wire(spend["colleague"]),
            "agentName": "Colleague",
            "spendCents": 50,
            "inputTokens": 1000,
            "outputTokens": 200,
            "events": 1,
        },
        {
            "agentId": wire(agent),
            "agentName": "Builder",
            "spendCents": 35,
            "inputTokens": 3000,
            "outputTokens": 400,
            "events": 3,
        },
    ]


def test_spend_by_project_keeps_costs_of_no_project_in_one_row(board, company, issue, spend):
    assert rows(board, company, "by-project") == [
        {
            "projectId": None,
            "projectName": None,
            "spendCents": 55,
            "inputTokens": 2000,
            "outputTokens": 200,
            "events": 2,
        },
        {
            "projectId": wire(issue.project_id),
            "projectName": issue.project.name,
            "spendCents": 30,
            "inputTokens": 2000,
            "outputTokens": 400,
            "events": 2,
        },
    ]


def test_spend_by_issue_names_each_issue(board, company, issue, spend):
    other = spend["other"]

    assert [
        (row["issueId"], row["identifier"], row["title"], row["spendCents"], row["events"])
        for row in rows(board, company, "by-issue")
    ] == [
        (wire(other), other.identifier, other.title, 50, 1),
        (wire(issue), issue.identifier, issue.title, 30, 2),
        (None, None, None, 5, 1),
    ]


def test_spend_by_model(board, company, spend):
    assert [
        (row["provider"], row["model"], row["spendCents"], row["events"])
        for row in rows(board, company, "by-model")
    ] == [("openai", "gpt-5", 50, 1), ("anthropic", "claude-sonnet-4", 35, 3)]


def test_the_rows_follow_the_window(board, company, spend):
    start = this_month()[0]
    query = "?" + urlencode({"from": (start - timedelta(days=20)).isoformat(), "to": start})

    assert [
        (row["agentName"], row["spendCents"]) for row in rows(board, company, "by-agent", query)
    ] == [("Colleague", 1000)]


@pytest.mark.parametrize("rollup", ROLLUPS)
def test_each_rollup_is_one_aggregate_query(
    board, company, spend, rollup, django_assert_num_queries
):
    # The request's savepoint and its release, the board token, the user's memberships, the
    # company, and the one aggregate (names joined in, no query per row).
    with django_assert_num_queries(6):
        response = board.get(f"/api/companies/{company.pk}/costs/{rollup}")

    assert response.status_code == 200
