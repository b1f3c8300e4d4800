"""`GET/PATCH /api/companies/{id}`: the board reads and edits its company; the issue prefix and
counter are the system's own; every change is logged with its previous value."""

from __future__ import annotations

import pytest

from companies.models import ActivityEvent, Company
from paperclip.ids import new_id
from tests import factories
from tests.conftest import client_for
from tests.wire import wire

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "Not found", "code": "not_found"}


def company_row(company: Company) -> dict:
    return Company.objects.filter(pk=company.pk).values().get()


def test_board_reads_its_company(board, company):
    factories.IssueFactory(company=company)
    factories.IssueFactory(company=company)

    response = board.get(f"/api/companies/{company.pk}")

    assert response.status_code == 200
    body = response.json()
    assert {
        k: body[k] for k in ("id", "name", "description", "issuePrefix", "issueCounter", "status")
    } == {
        "id": wire(company),
        "name": "Acme Robotics",
        "description": "",
        "issuePrefix": "ACM",
        "issueCounter": 2,
        "status": "active",
    }
    assert body["createdAt"].endswith("Z")
    assert body["updatedAt"].endswith("Z")


def test_agent_reads_its_own_company(agent_client, company):
    response = agent_client.get(f"/api/companies/{company.pk}")

    assert (response.status_code, response.json()["id"]) == (200, wire(company))


def test_board_renames_its_company_and_the_log_keeps_the_old_name(board, board_user, company):
    response = board.patch(f"/api/companies/{company.pk}", {"name": "Acme Rockets"}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["issuePrefix"]) == ("Acme Rockets", "ACM")
    company.refresh_from_db()
    assert (company.name, company.issue_prefix) == ("Acme Rockets", "ACM")
    row = ActivityEvent.objects.get(company=company)
    assert (row.action, row.entity_type, row.entity_id) == (
        "company.updated",
        "company",
        company.pk,
    )
    assert (row.actor_type, row.actor_id) == ("user", board_user.pk)
    assert row.details["changes"] == {"name": {"from": "Acme Robotics", "to": "Acme Rockets"}}


def test_company_update_appears_in_the_company_activity(board, company):
    board.patch(f"/api/companies/{company.pk}", {"name": "Acme Rockets"}, format="json")

    response = board.get(f"/api/companies/{company.pk}/activity")

    assert response.status_code == 200
    [row] = response.json()
    assert (row["action"], row["entityId"], row["details"]["changes"]["name"]["to"]) == (
        "company.updated",
        wire(company),
        "Acme Rockets",
    )


def test_board_updates_description_status_and_budget(board, company):
    response = board.patch(
        f"/api/companies/{company.pk}",
        {"description": "We build robots", "status": "paused", "budgetMonthlyCents": 50_000},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["description"], body["status"], body["budgetMonthlyCents"]) == (
        "We build robots",
        "paused",
        50_000,
    )
    company.refresh_from_db()
    assert (company.description, company.status, company.budget_monthly_cents) == (
        "We build robots",
        "paused",
        50_000,
    )


def test_patch_ignores_the_read_only_issue_prefix_and_counter(board, company):
    factories.IssueFactory(company=company)

    response = board.patch(
        f"/api/companies/{company.pk}",
        {"issuePrefix": "ZZZ", "issueCounter": 99, "id": new_id("cmp"), "name": "Acme Two"},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["name"], body["issuePrefix"], body["issueCounter"]) == (
        wire(company),
        "Acme Two",
        "ACM",
        1,
    )
    company.refresh_from_db()
    assert (company.issue_prefix, company.issue_counter) == ("ACM", 1)
    assert set(ActivityEvent.objects.get().details["changes"]) == {"name"}


def test_next_issue_still_numbers_from_the_real_counter(board, company):
    factories.IssueFactory(company=company)
    board.patch(f"/api/companies/{company.pk}", {"issueCounter": 99}, format="json")

    response = board.post(f"/api/companies/{company.pk}/issues", {"title": "Next"}, format="json")

    assert response.json()["identifier"] == "ACM-2"


def test_patch_that_changes_nothing_writes_no_activity(board, company):
    response = board.patch(f"/api/companies/{company.pk}", {"name": "Acme Robotics"}, format="json")

    assert response.status_code == 200
    assert not ActivityEvent.objects.exists()


def test_unknown_status_is_a_validation_error(board, company):
    before = company_row(company)

    response = board.patch(f"/api/companies/{company.pk}", {"status": "bankrupt"}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["code"], list(body["details"])) == (
        "Validation failed",
        "validation_error",
        ["status"],
    )
    assert company_row(company) == before
    assert not ActivityEvent.objects.exists()


def test_empty_name_is_a_validation_error(board, company):
    response = board.patch(f"/api/companies/{company.pk}", {"name": ""}, format="json")

    assert response.status_code == 400
    assert list(response.json()["details"]) == ["name"]
    company.refresh_from_db()
    assert company.name == "Acme Robotics"


def test_a_bad_field_refuses_the_whole_patch(board, company):
    before = company_row(company)

    response = board.patch(
        f"/api/companies/{company.pk}", {"name": "Half done", "status": "bankrupt"}, format="json"
    )

    assert response.status_code == 400
    assert company_row(company) == before


def test_agent_cannot_edit_its_company(agent_client, company):
    before = company_row(company)

    response = agent_client.patch(f"/api/companies/{company.pk}", {"name": "Ours"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert company_row(company) == before


def test_viewer_cannot_edit_the_company(company):
    vera = factories.MembershipFactory(company=company, user__username="vera", role="viewer").user
    viewer = client_for(factories.BoardTokenFactory(user=vera).token)
    before = company_row(company)

    read = viewer.get(f"/api/companies/{company.pk}")
    write = viewer.patch(f"/api/companies/{company.pk}", {"name": "Vera Inc"}, format="json")

    assert read.status_code == 200
    assert write.status_code == 403
    assert company_row(company) == before


def test_other_companys_board_and_agent_get_404(company, other_company, other_client):
    mallory = factories.MembershipFactory(company=other_company, user__username="mallory").user
    other_board = client_for(factories.BoardTokenFactory(user=mallory).token)
    before = company_row(company)

    responses = [
        other_board.get(f"/api/companies/{company.pk}"),
        other_board.patch(f"/api/companies/{company.pk}", {"name": "Ours"}, format="json"),
        other_client.get(f"/api/companies/{company.pk}"),
    ]

    assert [(r.status_code, r.json()) for r in responses] == [(404, NOT_FOUND)] * 3
    assert company_row(company) == before


@pytest.mark.parametrize("company_id", [new_id("cmp"), "garbage", "ACM"])
def test_unknown_company_id_gets_404(board, company, company_id):
    get = board.get(f"/api/companies/{company_id}")
    patch = board.patch(f"/api/companies/{company_id}", {"name": "x"}, format="json")

    assert (get.status_code, get.json()) == (404, NOT_FOUND)
    assert (patch.status_code, patch.json()) == (404, NOT_FOUND)
