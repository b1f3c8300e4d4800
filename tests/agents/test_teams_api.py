"""Teams on `/api` (DESIGN §8): the board creates, renames and deletes them; the company reads
them; another company sees nothing; a taken name is a 400; every write leaves an activity row."""

from __future__ import annotations

import pytest

from agents.models import Agent, Team
from companies.models import ActivityEvent
from tests import factories
from tests.conftest import iso
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "Not found", "code": "not_found"}


def team_body(team: Team) -> dict:
    return {
        "id": wire(team),
        "companyId": wire(team.company_id),
        "name": team.name,
        "description": team.description,
        "createdAt": iso(team.created_at),
        "updatedAt": iso(team.updated_at),
    }


def activity_about(team_id: str) -> list[tuple[str, str, str, dict]]:
    """(action, actor type, actor id, details) of every row about the team, oldest first."""
    rows = ActivityEvent.objects.filter(entity_type="team", entity_id=team_id)
    return [
        (r.action, r.actor_type, r.actor_id, r.details) for r in rows.order_by("created_at", "id")
    ]


@pytest.fixture
def team(company):
    return factories.TeamFactory(company=company, name="Growth", description="Ads and funnels")


# -- GET /api/companies/{id}/teams ----------------------------------------------------------------


def test_company_members_list_the_teams_by_name(board, agent_client, company, team, other_company):
    design = factories.TeamFactory(company=company, name="Design")
    factories.TeamFactory(company=other_company, name="Theirs")

    for client in (board, agent_client):
        response = client.get(f"/api/companies/{company.pk}/teams")
        assert response.status_code == 200
        assert response.json() == [team_body(design), team_body(team)]


def test_another_companys_teams_are_404(other_client, other_board, company, team):
    for client in (other_client, other_board):
        assert client.get(f"/api/companies/{company.pk}/teams").json() == NOT_FOUND
        assert client.get(f"/api/teams/{team.pk}").status_code == 404


def test_a_team_is_read_by_either_id_form(agent_client, team):
    for ref in (team.pk, wire(team)):
        response = agent_client.get(f"/api/teams/{ref}")
        assert response.status_code == 200
        assert response.json() == team_body(team)


def test_an_unknown_or_malformed_team_id_is_404(board):
    for ref in ("tm_00000000000000000000000000", "nope"):
        response = board.get(f"/api/teams/{ref}")
        assert (response.status_code, response.json()) == (404, NOT_FOUND)


# -- POST /api/companies/{id}/teams ---------------------------------------------------------------


def test_board_creates_a_team_201_and_it_is_logged(board, board_user, company):
    response = board.post(
        f"/api/companies/{company.pk}/teams",
        {"name": "Platform", "description": "Keeps the lights on"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    team = Team.objects.get(pk=stored(response.json()["id"], Team))
    assert (team.company, team.name, team.description) == (
        company,
        "Platform",
        "Keeps the lights on",
    )
    assert response.json() == team_body(team)
    assert activity_about(team.pk) == [
        ("team.created", "user", board_user.pk, {"name": "Platform"})
    ]


def test_an_agent_may_not_create_a_team_403(agent_client, company):
    response = agent_client.post(
        f"/api/companies/{company.pk}/teams", {"name": "Rogue"}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert not Team.objects.exists()
    assert not ActivityEvent.objects.exists()


def test_another_companys_board_cannot_create_a_team_here_404(other_board, company):
    response = other_board.post(
        f"/api/companies/{company.pk}/teams", {"name": "Trojan"}, format="json"
    )

    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert not Team.objects.exists()


def test_a_taken_name_in_any_case_is_400_and_writes_nothing(board, company, team):
    response = board.post(f"/api/companies/{company.pk}/teams", {"name": "gROWTH"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "error": "Validation failed",
        "code": "validation_error",
        "details": {"name": ["A team with this name already exists."]},
    }
    assert list(Team.objects.values_list("name", flat=True)) == ["Growth"]
    assert not ActivityEvent.objects.exists()


def test_the_same_name_is_fine_in_another_company(board, company, other_company):
    factories.TeamFactory(company=other_company, name="Growth")

    response = board.post(f"/api/companies/{company.pk}/teams", {"name": "Growth"}, format="json")

    assert response.status_code == 201, response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "name"), ({"name": ""}, "name"), ({"name": "X", "lead": "me"}, "lead")],
    ids=["missing name", "blank name", "unknown field"],
)
def test_a_bad_body_is_400_naming_the_field(board, company, body, field):
    response = board.post(f"/api/companies/{company.pk}/teams", body, format="json")

    assert response.status_code == 400
    assert list(response.json()["details"]) == [field]
    assert not Team.objects.exists()


# -- PATCH /api/teams/{id} ------------------------------------------------------------------------


def test_board_renames_a_team_and_the_change_is_logged(board, board_user, team):
    response = board.patch(f"/api/teams/{team.pk}", {"name": "Growth & Ads"}, format="json")

    assert response.status_code == 200, response.json()
    team.refresh_from_db()
    assert (team.name, team.description) == ("Growth & Ads", "Ads and funnels")
    assert response.json() == team_body(team)
    assert activity_about(team.pk) == [
        (
            "team.updated",
            "user",
            board_user.pk,
            {"changes": {"name": {"from": "Growth", "to": "Growth & Ads"}}},
        )
    ]


def test_a_patch_that_changes_nothing_logs_nothing(board, team):
    response = board.patch(f"/api/teams/{team.pk}", {"name": "Growth"}, format="json")

    assert response.status_code == 200
    assert not ActivityEvent.objects.exists()


def test_renaming_to_another_teams_name_is_400(board, company, team):
    factories.TeamFactory(company=company, name="Design")

    response = board.patch(f"/api/teams/{team.pk}", {"name": "design"}, format="json")

    assert response.status_code == 400
    assert response.json()["details"] == {"name": ["A team with this name already exists."]}
    team.refresh_from_db()
    assert team.name == "Growth"


def test_an_agent_may_not_edit_a_team_403(agent_client, team):
    response = agent_client.patch(f"/api/teams/{team.pk}", {"name": "Mine"}, format="json")

    assert response.status_code == 403
    team.refresh_from_db()
    assert team.name == "Growth"
    assert not ActivityEvent.objects.exists()


def test_another_companys_board_cannot_edit_a_team_404(other_board, team):
    response = other_board.patch(f"/api/teams/{team.pk}", {"name": "Ours"}, format="json")

    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    team.refresh_from_db()
    assert team.name == "Growth"


# -- DELETE /api/teams/{id} -----------------------------------------------------------------------


def test_board_deletes_a_team_its_agents_stay_without_one(board, board_user, team, agent):
    agent.team = team
    agent.save()
    team_id = team.pk

    response = board.delete(f"/api/teams/{team_id}")

    assert response.status_code == 204
    assert not Team.objects.exists()
    assert Agent.objects.get(pk=agent.pk).team is None
    assert activity_about(team_id) == [("team.deleted", "user", board_user.pk, {"name": "Growth"})]


def test_an_agent_may_not_delete_a_team_403(agent_client, team):
    assert agent_client.delete(f"/api/teams/{team.pk}").status_code == 403
    assert Team.objects.filter(pk=team.pk).exists()


def test_another_companys_board_cannot_delete_a_team_404(other_board, team):
    assert other_board.delete(f"/api/teams/{team.pk}").status_code == 404
    assert Team.objects.filter(pk=team.pk).exists()


# -- joining ---------------------------------------------------------------------------------------


def test_an_agent_joins_a_team_through_its_team_id(board, team, agent):
    response = board.patch(f"/api/agents/{agent.pk}", {"teamId": wire(team)}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["teamId"] == wire(team)
    assert Agent.objects.get(pk=agent.pk).team == team
