"""`/v1` teams (DESIGN §8): the same rows and services as `/api`'s, under
`/v1/companies/{cid}/teams`, in the `{data, meta}` envelope with ids as stored. The board writes;
an agent is refused (403); another company is a 404; a taken name is a 400; every write is
logged."""

from __future__ import annotations

import pytest

from agents.models import Team
from companies.models import ActivityEvent
from tests import factories
from tests.conftest import iso

pytestmark = pytest.mark.django_db


def teams_url(company) -> str:
    return f"/v1/companies/{company.pk}/teams"


def team_data(team: Team) -> dict:
    return {
        "id": team.pk,
        "companyId": team.company_id,
        "name": team.name,
        "description": team.description,
        "createdAt": iso(team.created_at),
        "updatedAt": iso(team.updated_at),
    }


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["requestId"] == response.headers["X-Request-Id"]
    return error


def actions() -> list[tuple[str, str, str]]:
    return list(
        ActivityEvent.objects.filter(entity_type="team")
        .order_by("created_at", "id")
        .values_list("action", "actor_type", "actor_id")
    )


@pytest.fixture
def team(company):
    return factories.TeamFactory(company=company, name="Growth", description="Ads")


def test_the_list_is_a_page_of_teams_by_name(agent_client, company, team, other_company):
    design = factories.TeamFactory(company=company, name="Design")
    factories.TeamFactory(company=other_company, name="Theirs")

    response = agent_client.get(teams_url(company))

    assert response.status_code == 200
    assert response.json() == {
        "data": [team_data(design), team_data(team)],
        "meta": {
            "requestId": response.headers["X-Request-Id"],
            "nextCursor": None,
            "hasMore": False,
        },
    }


def test_the_list_pages_with_the_cursor(board, company):
    names = [factories.TeamFactory(company=company, name=n).name for n in ("A", "B", "C")]

    first = board.get(teams_url(company), {"limit": 2}).json()
    second = board.get(teams_url(company), {"limit": 2, "cursor": first["meta"]["nextCursor"]})

    assert [t["name"] for t in first["data"]] == names[:2]
    assert first["meta"]["hasMore"] is True
    assert [t["name"] for t in second.json()["data"]] == names[2:]
    assert second.json()["meta"]["hasMore"] is False


def test_a_team_is_read_with_its_stored_id(agent_client, company, team):
    response = agent_client.get(f"{teams_url(company)}/{team.pk}")

    assert response.status_code == 200
    assert response.json()["data"] == team_data(team)


def test_board_creates_a_team_201_and_it_is_logged(board, board_user, company):
    response = board.post(
        teams_url(company), {"name": "Platform", "description": "Infra"}, format="json"
    )

    assert response.status_code == 201, response.json()
    team = Team.objects.get()
    assert (team.company, team.name, team.description) == (company, "Platform", "Infra")
    assert response.json()["data"] == team_data(team)
    assert response.json()["data"]["id"].startswith("tm_")
    assert actions() == [("team.created", "user", board_user.pk)]


def test_board_renames_a_team_and_it_is_logged(board, board_user, company, team):
    response = board.patch(f"{teams_url(company)}/{team.pk}", {"name": "Ads"}, format="json")

    assert response.status_code == 200, response.json()
    team.refresh_from_db()
    assert team.name == "Ads"
    assert response.json()["data"] == team_data(team)
    assert actions() == [("team.updated", "user", board_user.pk)]


def test_board_deletes_a_team_204_with_no_body(board, board_user, company, team):
    response = board.delete(f"{teams_url(company)}/{team.pk}")

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["X-Request-Id"]
    assert not Team.objects.exists()
    assert actions() == [("team.deleted", "user", board_user.pk)]


def test_an_agent_may_read_but_not_write_403(agent_client, company, team):
    answers = [
        agent_client.post(teams_url(company), {"name": "Rogue"}, format="json"),
        agent_client.patch(f"{teams_url(company)}/{team.pk}", {"name": "Mine"}, format="json"),
        agent_client.delete(f"{teams_url(company)}/{team.pk}"),
    ]

    for response in answers:
        assert error_of(response, 403)["code"] == "forbidden"
    assert list(Team.objects.values_list("name", flat=True)) == ["Growth"]
    assert not ActivityEvent.objects.exists()


def test_another_company_is_404_on_every_route(other_board, company, team):
    detail = f"{teams_url(company)}/{team.pk}"
    answers = [
        other_board.get(teams_url(company)),
        other_board.post(teams_url(company), {"name": "Trojan"}, format="json"),
        other_board.get(detail),
        other_board.patch(detail, {"name": "Ours"}, format="json"),
        other_board.delete(detail),
    ]

    for response in answers:
        assert error_of(response, 404)["code"] == "not_found"
    assert list(Team.objects.values_list("name", flat=True)) == ["Growth"]
    assert not ActivityEvent.objects.exists()


def test_a_team_of_another_company_under_ones_own_company_is_404(other_board, other_company, team):
    response = other_board.get(f"{teams_url(other_company)}/{team.pk}")

    assert error_of(response, 404)["code"] == "not_found"


def test_an_unknown_team_id_is_404(board, company):
    for ref in ("tm_00000000000000000000000000", "nope"):
        assert error_of(board.get(f"{teams_url(company)}/{ref}"), 404)["code"] == "not_found"


def test_a_taken_name_in_any_case_is_400_naming_it(board, company, team):
    response = board.post(teams_url(company), {"name": "growth"}, format="json")

    error = error_of(response, 400)
    assert (error["code"], error["details"]) == (
        "validation_error",
        {"name": ["A team with this name already exists."]},
    )
    assert Team.objects.count() == 1
    assert not ActivityEvent.objects.exists()


def test_an_unknown_field_is_400_naming_it(board, company):
    response = board.post(teams_url(company), {"name": "X", "leadId": "agt_1"}, format="json")

    assert error_of(response, 400)["details"] == {"leadId": ["Unknown field."]}
    assert not Team.objects.exists()


def test_a_team_made_on_api_is_the_same_row_on_v1(board, company):
    made = board.post(f"/api/companies/{company.pk}/teams", {"name": "Shared"}, format="json")

    listed = board.get(teams_url(company)).json()["data"]

    assert made.status_code == 201
    assert [t["name"] for t in listed] == ["Shared"]
    assert listed[0]["id"] == Team.objects.get().pk
