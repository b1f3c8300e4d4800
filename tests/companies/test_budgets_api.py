"""`PATCH /api/companies/{id}/budgets` and `PATCH /api/agents/{id}/budgets {budgetMonthlyCents}`
(DESIGN §10): the board sets a monthly budget (0 = none). Lowered to or below this month's spend,
the scope stops now (the agent paused for its budget, one `budget_override_required` approval);
raised above it, the stop is lifted. The answer is the company or agent with its budget and its
spend this month."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent
from companies.models import ActivityEvent, Company
from issues.models import Approval
from paperclip.ids import new_id
from tests import factories
from tests.wire import wire

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "Not found", "code": "not_found"}
OVERRIDE = Approval.Type.BUDGET_OVERRIDE_REQUIRED


def overrides():
    return Approval.objects.filter(type=OVERRIDE)


@pytest.fixture
def spent(agent):
    """The agent has spent 1500 cents this month (and 9000 last month, which does not count)."""
    factories.CostEventFactory(agent=agent, cost_cents=1000)
    factories.CostEventFactory(agent=agent, cost_cents=500)
    factories.CostEventFactory(
        agent=agent, cost_cents=9000, occurred_at=timezone.now() - timedelta(days=40)
    )
    return agent


# -- the company ----------------------------------------------------------------------------------


def test_board_sets_the_company_budget_and_reads_it_with_the_spend(board, company, spent):
    response = board.patch(
        f"/api/companies/{company.pk}/budgets", {"budgetMonthlyCents": 50_000}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["id"], body["budgetMonthlyCents"], body["spentMonthlyCents"]) == (
        wire(company),
        50_000,
        1500,
    )
    company.refresh_from_db()
    assert company.budget_monthly_cents == 50_000
    event = ActivityEvent.objects.get(action="budget.updated")
    assert event.details["budgetMonthlyCents"] == {"from": 0, "to": 50_000}


def test_lowering_the_company_budget_below_its_spend_stops_every_agent(board, company, spent):
    factories.AgentFactory(company=company, name="Second")

    response = board.patch(
        f"/api/companies/{company.pk}/budgets", {"budgetMonthlyCents": 1000}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert (response.json()["budgetMonthlyCents"], response.json()["spentMonthlyCents"]) == (
        1000,
        1500,
    )
    assert set(Agent.objects.values_list("name", "status", "pause_reason")) == {
        ("Builder", "paused", "budget"),
        ("Second", "paused", "budget"),
    }
    assert list(overrides().values_list("status", "payload__scope")) == [("pending", "company")]


def test_raising_the_company_budget_resumes_its_agents(board, company, spent):
    board.patch(f"/api/companies/{company.pk}/budgets", {"budgetMonthlyCents": 1000}, format="json")

    response = board.patch(
        f"/api/companies/{company.pk}/budgets", {"budgetMonthlyCents": 5000}, format="json"
    )

    assert response.status_code == 200, response.json()
    spent.refresh_from_db()
    assert (spent.status, spent.pause_reason) == ("active", "")
    assert list(overrides().values_list("status", flat=True)) == ["cancelled"]


def test_company_list_carries_each_spend_in_a_fixed_number_of_queries(
    admin_client, company, other_company, spent, django_assert_num_queries
):
    factories.CostEventFactory(agent=factories.AgentFactory(company=other_company), cost_cents=7)
    for n in range(3):
        factories.CompanyFactory(name=f"Idle {n}")

    # inside the request's savepoint (2): the board token, the caller's seats, the page of
    # companies (each one's spend a subquery of the same SELECT)
    with django_assert_num_queries(5):
        response = admin_client.get("/api/companies")

    assert response.status_code == 200
    spend = {row["name"]: row["spentMonthlyCents"] for row in response.json()}
    assert spend == {"Acme Robotics": 1500, "Globex": 7, "Idle 0": 0, "Idle 1": 0, "Idle 2": 0}


# -- the agent ------------------------------------------------------------------------------------


def test_board_sets_the_agent_budget_and_reads_it_with_the_spend(board, spent):
    response = board.patch(
        f"/api/agents/{spent.pk}/budgets", {"budgetMonthlyCents": 5000}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert {k: body[k] for k in ("id", "status", "pauseReason")} == {
        "id": wire(spent),
        "status": "active",
        "pauseReason": None,
    }
    assert (body["budgetMonthlyCents"], body["spentMonthlyCents"]) == (5000, 1500)
    spent.refresh_from_db()
    assert spent.budget_monthly_cents == 5000
    assert not overrides().exists()


def test_lowering_the_agent_budget_below_its_spend_pauses_it_and_asks_the_board(board, spent):
    response = board.patch(
        f"/api/agents/{spent.pk}/budgets", {"budgetMonthlyCents": 1000}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["pauseReason"], body["spentMonthlyCents"]) == (
        "paused",
        "budget",
        1500,
    )
    spent.refresh_from_db()
    assert (spent.status, spent.pause_reason, spent.budget_monthly_cents) == (
        "paused",
        "budget",
        1000,
    )
    override = overrides().get()
    assert (override.status, override.payload["scope"], override.payload["id"]) == (
        "pending",
        "agent",
        spent.pk,
    )


def test_lowering_it_again_raises_no_second_approval(board, spent):
    board.patch(f"/api/agents/{spent.pk}/budgets", {"budgetMonthlyCents": 1000}, format="json")

    response = board.patch(
        f"/api/agents/{spent.pk}/budgets", {"budgetMonthlyCents": 800}, format="json"
    )

    assert response.status_code == 200
    assert overrides().count() == 1


def test_raising_the_agent_budget_resumes_it_and_withdraws_the_override(board, spent):
    board.patch(f"/api/agents/{spent.pk}/budgets", {"budgetMonthlyCents": 1000}, format="json")

    response = board.patch(
        f"/api/agents/{spent.pk}/budgets", {"budgetMonthlyCents": 2000}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["pauseReason"]) == ("active", None)
    spent.refresh_from_db()
    assert (spent.status, spent.pause_reason) == ("active", "")
    assert list(overrides().values_list("status", flat=True)) == ["cancelled"]


def test_a_board_pause_reads_manual(board, agent):
    board.post(f"/api/agents/{agent.pk}/pause")

    response = board.get(f"/api/agents/{agent.pk}")

    assert (response.json()["status"], response.json()["pauseReason"]) == ("paused", "manual")


def test_zero_removes_the_budget_and_lifts_the_stop(board, spent):
    board.patch(f"/api/agents/{spent.pk}/budgets", {"budgetMonthlyCents": 1000}, format="json")

    response = board.patch(
        f"/api/agents/{spent.pk}/budgets", {"budgetMonthlyCents": 0}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["budgetMonthlyCents"], response.json()["status"]) == (0, "active")


# -- refusals (both routes) -----------------------------------------------------------------------


def budgets_url(kind: str, company: Company, agent: Agent) -> str:
    return (
        f"/api/companies/{company.pk}/budgets"
        if kind == "company"
        else (f"/api/agents/{agent.pk}/budgets")
    )


@pytest.mark.parametrize("kind", ["company", "agent"])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"budgetMonthlyCents": -1}, "budgetMonthlyCents"),
        ({"budgetMonthlyCents": 12.5}, "budgetMonthlyCents"),
        ({"budgetMonthlyCents": "lots"}, "budgetMonthlyCents"),
        ({"budgetMonthlyCents": None}, "budgetMonthlyCents"),
        ({"budgetMonthlyCents": 2**31}, "budgetMonthlyCents"),
        ({}, "budgetMonthlyCents"),
        ({"budgetMonthlyCents": 100, "budget": 5}, "budget"),
    ],
)
def test_a_bad_budget_is_400_naming_the_field(board, company, agent, kind, body, field):
    response = board.patch(budgets_url(kind, company, agent), body, format="json")

    assert response.status_code == 400, response.json()
    assert (response.json()["code"], list(response.json()["details"])) == (
        "validation_error",
        [field],
    )
    company.refresh_from_db()
    agent.refresh_from_db()
    assert (company.budget_monthly_cents, agent.budget_monthly_cents) == (0, 0)


@pytest.mark.parametrize("kind", ["company", "agent"])
def test_an_agent_may_not_set_a_budget(agent_client, company, agent, kind):
    response = agent_client.patch(
        budgets_url(kind, company, agent), {"budgetMonthlyCents": 10**6}, format="json"
    )

    assert response.status_code == 403, response.json()
    assert response.json()["code"] == "forbidden"
    company.refresh_from_db()
    agent.refresh_from_db()
    assert (company.budget_monthly_cents, agent.budget_monthly_cents) == (0, 0)
    assert not ActivityEvent.objects.filter(action="budget.updated").exists()


@pytest.mark.parametrize("kind", ["company", "agent"])
def test_another_companys_budget_is_404(other_board, company, agent, kind):
    response = other_board.patch(
        budgets_url(kind, company, agent), {"budgetMonthlyCents": 1}, format="json"
    )

    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    company.refresh_from_db()
    assert company.budget_monthly_cents == 0


@pytest.mark.parametrize("path", ["companies", "agents"])
@pytest.mark.parametrize("ref", ["nothing-here", "cmp_0000000000000000000000000", "00000000"])
def test_a_bad_id_is_404(board, path, ref):
    response = board.patch(f"/api/{path}/{ref}/budgets", {"budgetMonthlyCents": 1}, format="json")

    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_an_unknown_id_of_the_right_shape_is_404(board):
    response = board.patch(
        f"/api/agents/{new_id('agt')}/budgets", {"budgetMonthlyCents": 1}, format="json"
    )

    assert (response.status_code, response.json()) == (404, NOT_FOUND)


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_budgets_answer_patch_only(board, company, method):
    response = getattr(board, method)(f"/api/companies/{company.pk}/budgets", {}, format="json")

    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")
