"""`/v1` tasks, written (reference 003, DESIGN §8): create (labels by name, dependencies, team
assignment), and PATCH of 003's editable fields only (frozen when finished, budget fixed once
started, If-Match)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.models import Agent, WakeupRequest
from companies.models import ActivityEvent
from issues.models import Issue, Label, Status
from paperclip.ids import as_uuid
from tests import factories
from tests.conftest import iso
from tests.wire import stored

pytestmark = pytest.mark.django_db


def tasks_url(company) -> str:
    return f"/v1/companies/{company.pk}/issues"


def task_url(issue) -> str:
    return f"/v1/companies/{issue.company_id}/issues/{issue.pk}"


def error_of(response) -> dict:
    error = response.json()["error"]
    assert error["requestId"] == response.headers["X-Request-Id"]
    return {key: value for key, value in error.items() if key != "requestId"}


# -- create ---------------------------------------------------------------------------------------


def test_create_answers_the_task_with_labels_by_name_made_on_first_use(board, company, agent):
    factories.LabelFactory(company=company, name="marketing")
    factories.LabelFactory(company=factories.CompanyFactory(), name="campaign")  # not ours
    parent = factories.IssueFactory(company=company)
    blocker = factories.IssueFactory(company=company)
    other_blocker = factories.IssueFactory(company=company)
    due = timezone.now() + timedelta(days=2)

    response = board.post(
        tasks_url(company),
        {
            "title": "Rewrite the hero section",
            "description": "Short, punchy.",
            "priority": "high",
            "parentId": parent.identifier,
            "assignedAgentId": agent.pk,
            "budget": {"perTaskUsd": 1.50},
            "dueAt": iso(due),
            "labels": ["marketing", "campaign", "Campaign"],
            "dependencies": [blocker.pk, other_blocker.identifier],
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    issue = Issue.objects.get(title="Rewrite the hero section")
    assert response.headers["ETag"] == issue.etag
    assert response.json()["data"] == {
        "id": issue.pk,
        "identifier": issue.identifier,
        "companyId": company.pk,
        "title": "Rewrite the hero section",
        "description": "Short, punchy.",
        "status": "assigned",
        "statusReason": None,
        "priority": "high",
        "parentId": parent.pk,
        "assignedAgentId": agent.pk,
        "assignedTeamId": None,
        "budget": {"perTaskUsd": 1.5, "spent": {"usd": 0.0}},
        "dueAt": iso(due),
        "labels": ["campaign", "marketing"],
        "dependencies": sorted([blocker.pk, other_blocker.pk]),
        "currentRunId": None,
        "createdAt": iso(issue.created_at),
        "updatedAt": iso(issue.updated_at),
    }
    assert issue.budget_usd == Decimal("1.50")
    assert sorted(Label.objects.for_company(company.pk).values_list("name", flat=True)) == [
        "campaign",
        "marketing",
    ]
    assert ActivityEvent.objects.filter(issue_id=issue.pk).count() == 1
    assert list(WakeupRequest.objects.filter(agent=agent).values_list("reason", flat=True)) == [
        "issue_assigned"
    ]


def test_create_without_an_agent_is_queued(board, company):
    response = board.post(tasks_url(company), {"title": "Someday"}, format="json")

    assert response.status_code == 201, response.json()
    task = response.json()["data"]
    assert (task["status"], task["statusReason"], task["labels"]) == ("queued", None, [])


def test_a_team_task_goes_to_its_available_agent_with_the_fewest_open_tasks(board, company):
    team = factories.TeamFactory(company=company)
    now = timezone.now()
    # Made out of order, so only the hiring dates can put senior first.
    junior = factories.AgentFactory(company=company, team=team, created_at=now - timedelta(days=1))
    busy = factories.AgentFactory(company=company, team=team, created_at=now - timedelta(days=9))
    senior = factories.AgentFactory(company=company, team=team, created_at=now - timedelta(days=5))
    paused = factories.AgentFactory(
        company=company, team=team, status=Agent.Status.PAUSED, created_at=now - timedelta(days=20)
    )
    factories.IssueFactory(company=company, assignee_agent=busy, status=Status.TODO)
    # Finished work is no load.
    factories.IssueFactory(company=company, assignee_agent=senior, status=Status.DONE)
    factories.AgentFactory(company=company, created_at=now - timedelta(days=30))  # not on it
    assert paused.status == "paused"

    first = board.post(
        tasks_url(company), {"title": "One", "assignedTeamId": team.pk}, format="json"
    )
    second = board.post(
        tasks_url(company), {"title": "Two", "assignedTeamId": as_uuid(team.pk)}, format="json"
    )

    # senior and junior both have none open: the longest-serving first; then junior has none.
    assert first.status_code == second.status_code == 201, first.json()
    assert [r.json()["data"]["assignedAgentId"] for r in (first, second)] == [senior.pk, junior.pk]
    assert first.json()["data"]["status"] == "assigned"
    assert first.json()["data"]["assignedTeamId"] == team.pk


def test_a_team_task_with_no_available_agent_waits_queued_saying_why(board, company):
    team = factories.TeamFactory(company=company)
    factories.AgentFactory(company=company, team=team, status=Agent.Status.PAUSED)

    response = board.post(
        tasks_url(company), {"title": "Nobody home", "assignedTeamId": team.pk}, format="json"
    )

    assert response.status_code == 201, response.json()
    task = response.json()["data"]
    assert (task["status"], task["statusReason"], task["assignedAgentId"]) == (
        "queued",
        "no_available_agent",
        None,
    )
    assert task["assignedTeamId"] == team.pk


def test_an_agent_named_with_a_team_gets_the_task_when_on_the_team(board, company):
    team = factories.TeamFactory(company=company)
    idle = factories.AgentFactory(company=company, team=team)
    named = factories.AgentFactory(company=company, team=team)
    factories.IssueFactory(company=company, assignee_agent=named, status=Status.TODO)

    response = board.post(
        tasks_url(company),
        {"title": "Yours", "assignedTeamId": team.pk, "assignedAgentId": named.pk},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["data"]["assignedAgentId"] == named.pk
    assert idle.assigned_issues.count() == 0


def test_an_agent_named_with_a_team_it_is_not_on_is_422(board, company, agent):
    team = factories.TeamFactory(company=company)

    response = board.post(
        tasks_url(company),
        {"title": "Yours", "assignedTeamId": team.pk, "assignedAgentId": agent.pk},
        format="json",
    )

    assert response.status_code == 422
    assert error_of(response) == {
        "code": "agent_not_on_team",
        "message": "The agent is not on the team",
        "details": {"assignedAgentId": agent.pk, "assignedTeamId": team.pk},
    }
    assert not Issue.objects.exists()


def test_create_refuses_unknown_fields_and_the_status(board, company):
    response = board.post(
        tasks_url(company), {"title": "x", "status": "running", "owner": "me"}, format="json"
    )

    assert response.status_code == 400
    assert error_of(response)["details"] == {
        "status": ["Unknown field."],
        "owner": ["Unknown field."],
    }
    assert not Issue.objects.exists()


def test_ids_of_another_company_in_the_body_name_nothing(board, company, other_company):
    foreign = factories.IssueFactory(company=other_company)
    outsider = factories.AgentFactory(company=other_company)

    response = board.post(
        tasks_url(company),
        {"title": "x", "dependencies": [foreign.pk], "assignedAgentId": outsider.pk},
        format="json",
    )

    assert response.status_code == 400
    assert set(error_of(response)["details"]) == {"dependencies", "assignedAgentId"}
    assert not Issue.objects.filter(company=company).exists()
    assert not Label.objects.exists()


def test_creating_in_another_company_is_404_and_makes_nothing(other_board, company):
    response = other_board.post(
        tasks_url(company), {"title": "x", "labels": ["sneaky"]}, format="json"
    )

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert not Issue.objects.exists() and not Label.objects.exists()


# -- PATCH ----------------------------------------------------------------------------------------


def test_patch_edits_title_description_labels_due_date_and_budget(board, company):
    issue = factories.IssueFactory(company=company, title="Old")
    issue.labels.set([factories.LabelFactory(company=company, name="stale")])
    due = timezone.now() + timedelta(days=1)

    response = board.patch(
        task_url(issue),
        {
            "title": "New",
            "description": "Now with detail",
            "labels": ["fresh"],
            "dueAt": iso(due),
            "budget": {"perTaskUsd": "2.25"},
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    task = response.json()["data"]
    assert (task["title"], task["description"], task["labels"], task["dueAt"]) == (
        "New",
        "Now with detail",
        ["fresh"],
        iso(due),
    )
    assert task["budget"]["perTaskUsd"] == 2.25
    issue.refresh_from_db()
    assert (issue.title, issue.budget_usd, issue.version) == ("New", Decimal("2.25"), 2)
    assert response.headers["ETag"] == issue.etag
    assert ActivityEvent.objects.filter(issue_id=issue.pk, action="issue.updated").count() == 1


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("status", "running", "/assign, /reassign, /cancel or /review"),
        ("assignedAgentId", "agt_x", "/assign"),
        ("priority", "high", "PATCH takes title, description, labels, dueAt"),
        ("parentId", None, "PATCH takes title, description, labels, dueAt"),
    ],
)
def test_patch_of_any_other_field_is_400_naming_it_and_what_to_use(
    board, company, field, value, says
):
    issue = factories.IssueFactory(company=company, title="Kept")

    response = board.patch(task_url(issue), {"title": "Changed", field: value}, format="json")

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], list(error["details"])) == ("validation_error", [field])
    assert says in error["details"][field][0]
    issue.refresh_from_db()
    assert issue.title == "Kept"


def test_the_budget_of_a_started_task_is_fixed(board, company, agent):
    issue = factories.IssueFactory(
        company=company,
        status=Status.TODO,
        assignee_agent=agent,
        budget_usd=Decimal("1.00"),
        started_at=timezone.now() - timedelta(hours=1),  # it ran once already
    )

    response = board.patch(task_url(issue), {"budget": {"perTaskUsd": 9}}, format="json")
    titled = board.patch(task_url(issue), {"title": "Still editable"}, format="json")

    assert response.status_code == 409
    error = error_of(response)
    assert (error["code"], error["message"]) == (
        "task_started",
        "The task has started; its budget is fixed",
    )
    assert titled.status_code == 200
    issue.refresh_from_db()
    assert (issue.budget_usd, issue.title) == (Decimal("1.00"), "Still editable")


@pytest.mark.parametrize(("status", "state"), [("done", "done"), ("cancelled", "cancelled")])
def test_a_finished_task_is_frozen(board, company, status, state):
    issue = factories.IssueFactory(company=company, status=status, title="Finished")

    response = board.patch(task_url(issue), {"title": "Reopened?"}, format="json")
    empty = board.patch(task_url(issue), {}, format="json")

    assert response.status_code == empty.status_code == 409
    assert error_of(response) == {
        "code": "task_frozen",
        "message": f"The task is {state}; a finished task cannot be edited",
        "details": {"status": state},
    }
    issue.refresh_from_db()
    assert (issue.title, issue.version) == ("Finished", 1)


def test_patch_with_a_stale_if_match_is_412_and_a_current_one_passes(board, company):
    issue = factories.IssueFactory(company=company, title="v1")
    etag = board.get(task_url(issue)).headers["ETag"]
    board.patch(task_url(issue), {"title": "v2"}, format="json")

    stale = board.patch(task_url(issue), {"title": "v3"}, format="json", HTTP_IF_MATCH=etag)
    current = board.patch(
        task_url(issue),
        {"title": "v3"},
        format="json",
        HTTP_IF_MATCH=board.get(task_url(issue)).headers["ETag"],
    )

    assert stale.status_code == 412
    assert error_of(stale)["code"] == "precondition_failed"
    assert current.status_code == 200
    issue.refresh_from_db()
    assert issue.title == "v3"


def test_patch_of_another_companys_task_is_404_under_either_company(
    other_board, board, company, other_company
):
    issue = factories.IssueFactory(company=company, title="Ours")
    theirs = factories.IssueFactory(company=other_company)

    direct = other_board.patch(task_url(issue), {"title": "Mine"}, format="json")
    under_own = other_board.patch(
        f"/v1/companies/{other_company.pk}/issues/{issue.pk}", {"title": "Mine"}, format="json"
    )
    theirs_under_ours = board.patch(
        f"/v1/companies/{company.pk}/issues/{theirs.pk}", {"title": "Mine"}, format="json"
    )

    assert direct.status_code == under_own.status_code == theirs_under_ours.status_code == 404
    issue.refresh_from_db()
    assert issue.title == "Ours"


@pytest.fixture
def waiting(board, company):
    """Two tasks queued for a team whose only agent is paused."""
    team = factories.TeamFactory(company=company)
    sleeper = factories.AgentFactory(company=company, team=team, status=Agent.Status.PAUSED)
    ids = [
        board.post(
            tasks_url(company), {"title": t, "assignedTeamId": team.pk}, format="json"
        ).json()["data"]["id"]
        for t in ("First", "Second")
    ]
    return team, sleeper, ids


def assignees(board, company, ids) -> list[tuple[str, str | None, str | None]]:
    tasks = [board.get(f"{tasks_url(company)}/{i}").json()["data"] for i in ids]
    return [(t["status"], t["statusReason"], t["assignedAgentId"]) for t in tasks]


def test_waiting_team_work_goes_to_an_agent_when_one_is_resumed(board, company, waiting):
    _, sleeper, ids = waiting

    resumed = board.post(f"/api/agents/{sleeper.pk}/resume", format="json")

    assert resumed.status_code == 200, resumed.json()
    assert assignees(board, company, ids) == [
        ("assigned", None, sleeper.pk),
        ("assigned", None, sleeper.pk),
    ]
    rows = ActivityEvent.objects.filter(action="issue.assigned", issue_id__in=ids)
    assert {(row.actor_type, row.issue_id) for row in rows} == {("system", i) for i in ids}


def test_waiting_team_work_goes_to_an_agent_hired_onto_the_team(board, company, waiting):
    team, _, ids = waiting

    hired = board.post(
        f"/api/companies/{company.pk}/agents",
        {"name": "Newcomer", "teamId": team.pk},
        format="json",
    )
    moved = factories.AgentFactory(company=company, name="Mover")
    board.patch(f"/api/agents/{moved.pk}", {"teamId": team.pk}, format="json")

    newcomer = stored(hired.json()["id"], Agent)
    # the newcomer takes both (the only available agent then); moving a second agent in later
    # finds nothing left waiting
    assert assignees(board, company, ids) == [
        ("assigned", None, newcomer),
        ("assigned", None, newcomer),
    ]


def test_a_team_agent_that_is_still_unavailable_assigns_nothing(board, company, waiting):
    team, _, ids = waiting
    other = factories.AgentFactory(company=company, name="Other", status=Agent.Status.PAUSED)

    board.patch(f"/api/agents/{other.pk}", {"teamId": team.pk}, format="json")

    assert assignees(board, company, ids) == [("queued", "no_available_agent", None)] * 2


def test_waiting_work_changed_meanwhile_is_skipped_not_a_failed_resume(
    board, company, waiting, monkeypatch
):
    """The waiting tasks are read, then each assigned under its own lock: one cancelled by
    someone else in between is skipped, and the resume still succeeds."""
    from issues.services import teams

    _, sleeper, ids = waiting
    real_pick = teams.team_pick

    def cancel_first_then_pick(team):
        first = Issue.objects.get(pk=ids[0])
        if first.status != Status.CANCELLED:  # "someone else" cancels it meanwhile
            board.post(f"{tasks_url(company)}/{first.pk}/cancel", {}, format="json")
        return real_pick(team)

    monkeypatch.setattr(teams, "team_pick", cancel_first_then_pick)
    resumed = board.post(f"/api/agents/{sleeper.pk}/resume", format="json")

    assert resumed.status_code == 200, resumed.json()
    assert assignees(board, company, ids) == [
        ("cancelled", None, None),
        ("assigned", None, sleeper.pk),
    ]


def test_the_agent_running_a_task_edits_and_cancels_it_from_its_run(agent_client, company, agent):
    """No run header on /v1: the claim's run speaks for the agent's edits of that task."""
    issue = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    url = f"{tasks_url(company)}/{issue.pk}"
    run = agent_client.post(f"{url}/runs", {}, format="json").json()["data"]

    edited = agent_client.patch(url, {"description": "Found the cause"}, format="json")
    cancelled = agent_client.post(f"{url}/cancel", {"reason": "duplicate"}, format="json")

    assert edited.status_code == 200, edited.json()
    assert edited.json()["data"]["description"] == "Found the cause"
    assert cancelled.status_code == 200, cancelled.json()
    assert cancelled.json()["data"]["status"] == "cancelled"
    rows = ActivityEvent.objects.filter(issue_id=issue.pk, action="issue.updated")
    assert [row.run_id for row in rows] == [run["id"]]
