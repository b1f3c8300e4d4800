"""Goals, projects and labels over HTTP: company records with one shape (create, list, read,
patch, board-only delete), each write logged; issues filter by them, and a paused project
refuses checkout (DESIGN §6)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from agents.models import HeartbeatRun
from companies.models import ActivityEvent
from issues.models import Goal, Issue, Label, Project
from tests import factories
from tests.conftest import client_for, iso
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "Not found", "code": "not_found"}
BOARD_ONLY = {"error": "Board access required", "code": "forbidden"}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def goal_body(goal: Goal) -> dict:
    goal = Goal.objects.get(pk=goal.pk)
    return {
        "id": wire(goal.pk),
        "companyId": wire(goal.company_id),
        "title": goal.title,
        "description": goal.description,
        "level": goal.level,
        "status": goal.status,
        "parentId": wire(goal.parent_id),
        "ownerAgentId": wire(goal.owner_agent_id),
        "createdAt": iso(goal.created_at),
        "updatedAt": iso(goal.updated_at),
    }


def project_body(project: Project) -> dict:
    project = Project.objects.get(pk=project.pk)
    return {
        "id": wire(project.pk),
        "companyId": wire(project.company_id),
        "name": project.name,
        "description": project.description,
        "status": project.status,
        "goalIds": sorted(wire(list(project.goals.values_list("pk", flat=True)))),
        "leadAgentId": wire(project.lead_agent_id),
        "targetDate": project.target_date.isoformat() if project.target_date else None,
        "pausedAt": iso(project.paused_at) if project.paused_at else None,
        "pauseReason": project.pause_reason or None,
        "createdAt": iso(project.created_at),
        "updatedAt": iso(project.updated_at),
    }


def label_body(label: Label) -> dict:
    label = Label.objects.get(pk=label.pk)
    return {
        "id": wire(label.pk),
        "companyId": wire(label.company_id),
        "name": label.name,
        "color": label.color,
        "createdAt": iso(label.created_at),
    }


def sorted_goals(body: dict) -> dict:
    return body | {"goalIds": sorted(body["goalIds"])}


def validation_error(response, *fields: str) -> None:
    assert response.status_code == 400, response.json()
    body = response.json()
    assert (body["error"], body["code"]) == ("Validation failed", "validation_error")
    assert set(body["details"]) == set(fields)


def the_row(action: str) -> ActivityEvent:
    return ActivityEvent.objects.get(action=action)


# -- goals -----------------------------------------------------------------------------------


def test_board_creates_a_goal_under_a_parent_201(board, board_user, company):
    parent = factories.GoalFactory(company=company, title="Win the market", level="company")

    response = board.post(
        f"/api/companies/{company.pk}/goals",
        {
            "title": "Ship v2",
            "description": "By summer",
            "level": "team",
            "status": "active",
            "parentId": parent.pk,
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    goal = Goal.objects.get(pk=stored(body["id"], Goal))
    assert goal.pk.startswith("gol_")
    assert body == goal_body(goal)
    assert (goal.company, goal.title, goal.level, goal.status, goal.parent) == (
        company,
        "Ship v2",
        "team",
        "active",
        parent,
    )
    row = the_row("goal.created")
    assert (row.entity_type, row.entity_id, row.actor_type, row.actor_id) == (
        "goal",
        goal.pk,
        "user",
        board_user.pk,
    )


def test_goal_defaults_to_a_planned_task_goal(agent_client, agent, company):
    response = agent_client.post(
        f"/api/companies/{company.pk}/goals", {"title": "Tidy up"}, format="json"
    )

    assert response.status_code == 201, response.json()
    goal = Goal.objects.get()
    assert response.json() == goal_body(goal)
    assert (goal.level, goal.status, goal.parent) == ("task", "planned", None)
    assert (the_row("goal.created").actor_type, the_row("goal.created").actor_id) == (
        "agent",
        agent.pk,
    )


@pytest.mark.parametrize(
    ("field", "value"), [("level", "galaxy"), ("status", "completed")], ids=["level", "status"]
)
def test_goal_with_an_unknown_choice_is_400(board, company, field, value):
    response = board.post(
        f"/api/companies/{company.pk}/goals", {"title": "Bad", field: value}, format="json"
    )

    validation_error(response, field)
    assert not Goal.objects.exists()
    assert not ActivityEvent.objects.exists()


def test_goal_under_another_companys_parent_is_400(board, company, other_company):
    theirs = factories.GoalFactory(company=other_company)

    response = board.post(
        f"/api/companies/{company.pk}/goals", {"title": "Sneaky", "parentId": theirs.pk}
    )

    validation_error(response, "parentId")
    assert list(Goal.objects.all()) == [theirs]
    assert not ActivityEvent.objects.exists()


def test_goal_list_is_the_companys_goals_newest_first(board, company, other_company):
    older = factories.GoalFactory(company=company, title="Older")
    newer = factories.GoalFactory(company=company, title="Newer")
    factories.GoalFactory(company=other_company)

    response = board.get(f"/api/companies/{company.pk}/goals")

    assert response.status_code == 200
    assert response.json() == [goal_body(newer), goal_body(older)]


def test_patching_a_goal_logs_what_changed(board, company):
    parent = factories.GoalFactory(company=company)
    goal = factories.GoalFactory(company=company, title="Old", status="planned")

    response = board.patch(
        f"/api/goals/{goal.pk}",
        {"title": "New", "status": "achieved", "parentId": parent.pk},
        format="json",
    )

    assert response.status_code == 200, response.json()
    goal.refresh_from_db()
    assert (goal.title, goal.status, goal.parent) == ("New", "achieved", parent)
    assert response.json() == goal_body(goal)
    assert the_row("goal.updated").details == {
        "changes": {
            "title": {"from": "Old", "to": "New"},
            "status": {"from": "planned", "to": "achieved"},
            "parentId": {"from": None, "to": parent.pk},
        }
    }


@pytest.mark.parametrize("depth", [0, 2], ids=["itself", "grandchild"])
def test_goal_cannot_become_its_own_ancestor_400(board, company, depth):
    root = factories.GoalFactory(company=company, title="Root")
    node = root
    for _ in range(depth):
        node = factories.GoalFactory(company=company, parent=node)

    response = board.patch(f"/api/goals/{root.pk}", {"parentId": node.pk}, format="json")

    validation_error(response, "parentId")
    root.refresh_from_db()
    assert root.parent is None
    assert not ActivityEvent.objects.exists()


def test_board_deletes_a_goal_204_and_its_issues_stay(board, company):
    goal = factories.GoalFactory(company=company, title="Obsolete")
    issue = factories.IssueFactory(company=company, goal=goal)

    response = board.delete(f"/api/goals/{goal.pk}")

    assert response.status_code == 204
    assert not Goal.objects.exists()
    issue.refresh_from_db()
    assert issue.goal is None
    row = the_row("goal.deleted")
    assert (row.entity_id, row.details) == (goal.pk, {"name": "Obsolete"})


# -- projects --------------------------------------------------------------------------------


def test_project_is_created_with_goals_a_lead_and_a_status_201(agent_client, company, agent):
    goals = [factories.GoalFactory(company=company) for _ in range(2)]

    response = agent_client.post(
        f"/api/companies/{company.pk}/projects",
        {
            "name": "Website",
            "description": "The new one",
            "status": "planned",
            "goalIds": [g.pk for g in goals],
            "leadAgentId": agent.pk,
            "targetDate": "2030-01-31",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    project = Project.objects.get()
    assert project.pk.startswith("prj_")
    assert sorted_goals(response.json()) == project_body(project)
    assert set(project.goals.all()) == set(goals)
    assert (project.lead_agent, project.status, str(project.target_date)) == (
        agent,
        "planned",
        "2030-01-31",
    )
    assert the_row("project.created").entity_id == project.pk


def test_project_status_defaults_to_backlog_and_not_paused(board, company):
    response = board.post(f"/api/companies/{company.pk}/projects", {"name": "Ops"}, format="json")

    assert response.status_code == 201, response.json()
    project = Project.objects.get()
    assert response.json() == project_body(project)
    assert (project.status, project.lead_agent, list(project.goals.all())) == ("backlog", None, [])
    assert (project.paused_at, response.json()["pausedAt"], response.json()["pauseReason"]) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize("field", ["goalIds", "leadAgentId"])
def test_project_naming_another_companys_goal_or_agent_is_400(
    board, company, other_company, other_agent, field
):
    value = {
        "goalIds": [factories.GoalFactory(company=other_company).pk],
        "leadAgentId": other_agent.pk,
    }[field]

    response = board.post(
        f"/api/companies/{company.pk}/projects", {"name": "Sneaky", field: value}, format="json"
    )

    validation_error(response, field)
    assert not Project.objects.exists()
    assert not ActivityEvent.objects.exists()


def test_project_with_an_unknown_status_is_400(board, company):
    response = board.post(
        f"/api/companies/{company.pk}/projects", {"name": "X", "status": "dormant"}, format="json"
    )

    validation_error(response, "status")
    assert not Project.objects.exists()


def test_project_list_is_the_companys_projects_by_name(agent_client, company, other_company):
    beta = factories.ProjectFactory(company=company, name="Beta")
    alpha = factories.ProjectFactory(company=company, name="Alpha")
    factories.ProjectFactory(company=other_company, name="Aardvark")

    response = agent_client.get(f"/api/companies/{company.pk}/projects")

    assert response.status_code == 200
    assert response.json() == [project_body(alpha), project_body(beta)]


def test_patching_a_project_logs_status_lead_and_goals(board, company, agent):
    goal = factories.GoalFactory(company=company)
    project = factories.ProjectFactory(company=company, name="Website")

    response = board.patch(
        f"/api/projects/{project.pk}",
        {"status": "in_progress", "leadAgentId": agent.pk, "goalIds": [goal.pk]},
        format="json",
    )

    assert response.status_code == 200, response.json()
    project.refresh_from_db()
    assert (project.status, project.lead_agent, list(project.goals.all())) == (
        "in_progress",
        agent,
        [goal],
    )
    assert response.json() == project_body(project)
    row = the_row("project.updated")
    assert (row.entity_type, row.entity_id) == ("project", project.pk)
    assert row.details == {
        "changes": {
            "status": {"from": "backlog", "to": "in_progress"},
            "leadAgentId": {"from": None, "to": agent.pk},
            "goalIds": {"from": [], "to": [goal.pk]},
        }
    }


def test_patching_a_project_with_another_companys_lead_is_400(board, company, other_agent):
    project = factories.ProjectFactory(company=company)

    response = board.patch(
        f"/api/projects/{project.pk}", {"leadAgentId": other_agent.pk}, format="json"
    )

    validation_error(response, "leadAgentId")
    project.refresh_from_db()
    assert project.lead_agent is None
    assert not ActivityEvent.objects.exists()


# -- labels ----------------------------------------------------------------------------------


def test_label_is_created_201(agent_client, company):
    response = agent_client.post(
        f"/api/companies/{company.pk}/labels", {"name": "Bug", "color": "#ff0000"}, format="json"
    )

    assert response.status_code == 201, response.json()
    label = Label.objects.get()
    assert label.pk.startswith("lbl_")
    assert response.json() == label_body(label)
    assert (label.company, label.name, label.color) == (company, "Bug", "#ff0000")
    assert the_row("label.created").details == {"name": "Bug"}


def test_label_name_taken_in_any_case_is_400(board, company):
    factories.LabelFactory(company=company, name="Bug")

    response = board.post(f"/api/companies/{company.pk}/labels", {"name": "bUG"}, format="json")

    validation_error(response, "name")
    assert response.json()["details"]["name"] == ["A label with this name already exists."]
    assert list(Label.objects.values_list("name", flat=True)) == ["Bug"]
    assert not ActivityEvent.objects.exists()


def test_the_same_label_name_is_fine_in_another_company(board, company, other_company):
    factories.LabelFactory(company=other_company, name="Bug")

    response = board.post(f"/api/companies/{company.pk}/labels", {"name": "bug"}, format="json")

    assert response.status_code == 201, response.json()
    assert Label.objects.for_company(company.pk).get().name == "bug"


def test_renaming_a_label_onto_a_taken_name_is_400_but_recasing_its_own_is_fine(board, company):
    factories.LabelFactory(company=company, name="Bug")
    label = factories.LabelFactory(company=company, name="feature")

    clash = board.patch(f"/api/labels/{label.pk}", {"name": "BUG"}, format="json")
    recase = board.patch(f"/api/labels/{label.pk}", {"name": "Feature"}, format="json")

    validation_error(clash, "name")
    assert recase.status_code == 200, recase.json()
    label.refresh_from_db()
    assert label.name == "Feature"
    assert recase.json() == label_body(label)
    assert the_row("label.updated").details == {
        "changes": {"name": {"from": "feature", "to": "Feature"}}
    }


def test_label_list_is_the_companys_labels_by_name(board, company, other_company):
    ux = factories.LabelFactory(company=company, name="ux")
    bug = factories.LabelFactory(company=company, name="bug")
    factories.LabelFactory(company=other_company, name="alien")

    response = board.get(f"/api/companies/{company.pk}/labels")

    assert response.status_code == 200
    assert response.json() == [label_body(bug), label_body(ux)]


def test_deleting_a_label_takes_it_off_its_issues(board, company):
    label = factories.LabelFactory(company=company, name="wontfix")
    issue = factories.IssueFactory(company=company)
    issue.labels.add(label)

    response = board.delete(f"/api/labels/{label.pk}")

    assert response.status_code == 204
    assert not Label.objects.exists()
    assert list(issue.labels.all()) == []
    row = the_row("label.deleted")
    assert (row.entity_type, row.entity_id, row.details) == ("label", label.pk, {"name": "wontfix"})


# -- the same rules for all three ------------------------------------------------------------

KINDS = {
    "goals": (Goal, factories.GoalFactory, {"title": "Renamed"}),
    "projects": (Project, factories.ProjectFactory, {"name": "Renamed"}),
    "labels": (Label, factories.LabelFactory, {"name": "Renamed"}),
}


@pytest.mark.parametrize("plural", KINDS)
def test_get_one_answers_the_record(agent_client, company, plural):
    _, factory, _ = KINDS[plural]
    record = factory(company=company)
    render = {"goals": goal_body, "projects": project_body, "labels": label_body}[plural]

    response = agent_client.get(f"/api/{plural}/{record.pk}")

    assert response.status_code == 200
    assert response.json() == render(record)


@pytest.mark.parametrize("plural", KINDS)
def test_agents_cannot_delete_403(agent_client, company, plural):
    model, factory, _ = KINDS[plural]
    record = factory(company=company)

    response = agent_client.delete(f"/api/{plural}/{record.pk}")

    assert response.status_code == 403
    assert response.json() == BOARD_ONLY
    assert model.objects.filter(pk=record.pk).exists()
    assert not ActivityEvent.objects.exists()


@pytest.mark.parametrize("plural", KINDS)
def test_unknown_id_is_404(board, plural):
    prefix = {"goals": "gol", "projects": "prj", "labels": "lbl"}[plural]

    for method in ("get", "patch", "delete"):
        response = getattr(board, method)(f"/api/{plural}/{prefix}_nope")
        assert (response.status_code, response.json()) == (404, NOT_FOUND), method


@pytest.mark.parametrize("plural", KINDS)
def test_another_companys_board_gets_404_everywhere(other_board, company, plural):
    model, factory, edit = KINDS[plural]
    record = factory(company=company)
    before = {f.name: getattr(record, f.name) for f in model._meta.concrete_fields}

    responses = [
        other_board.get(f"/api/companies/{company.pk}/{plural}"),
        other_board.post(f"/api/companies/{company.pk}/{plural}", edit, format="json"),
        other_board.get(f"/api/{plural}/{record.pk}"),
        other_board.patch(f"/api/{plural}/{record.pk}", edit, format="json"),
        other_board.delete(f"/api/{plural}/{record.pk}"),
    ]

    assert [(r.status_code, r.json()) for r in responses] == [(404, NOT_FOUND)] * 5
    record.refresh_from_db()
    assert {f.name: getattr(record, f.name) for f in model._meta.concrete_fields} == before
    assert model.objects.count() == 1
    assert not ActivityEvent.objects.exists()


# -- issues filter by them -------------------------------------------------------------------


def listed(client, company, **params) -> list[str]:
    response = client.get(f"/api/companies/{company.pk}/issues", params)
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()]


def test_issues_filter_by_project_goal_and_label(agent_client, company):
    project = factories.ProjectFactory(company=company)
    goal = factories.GoalFactory(company=company)
    label = factories.LabelFactory(company=company)
    in_project = factories.IssueFactory(company=company, project=project)
    for_goal = factories.IssueFactory(company=company, goal=goal)
    labelled = factories.IssueFactory(company=company)
    labelled.labels.add(label, factories.LabelFactory(company=company))
    factories.IssueFactory(company=company)  # none of them

    assert listed(agent_client, company, projectId=project.pk) == [wire(in_project)]
    assert listed(agent_client, company, goalId=goal.pk) == [wire(for_goal)]
    assert listed(agent_client, company, labelId=label.pk) == [wire(labelled)]
    assert listed(agent_client, company, projectId=project.pk, goalId=goal.pk) == []


# -- a paused project refuses checkout -------------------------------------------------------


def test_checkout_in_a_project_the_board_paused_is_409_and_changes_nothing(board, agent, company):
    project = factories.ProjectFactory(company=company, status="in_progress")
    issue = factories.IssueFactory(company=company, status="todo", project=project)
    paused = board.post(f"/api/projects/{project.pk}/pause", {}, format="json")
    assert paused.status_code == 200, paused.json()
    run = factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )
    client = client_for(factories.AgentApiKeyFactory(agent=agent).token, run_id=run.pk)
    events = ActivityEvent.objects.count()

    response = client.post(f"/api/issues/{issue.pk}/checkout", {}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "error": "Project is paused",
        "code": "project_paused",
        "details": {"issueId": wire(issue)},
    }
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id, issue.checkout_run_id, issue.version) == (
        "todo",
        None,
        None,
        1,
    )
    assert ActivityEvent.objects.count() == events


def test_checkout_in_an_active_project_succeeds(agent, company):
    project = factories.ProjectFactory(company=company, status="active")
    issue = factories.IssueFactory(company=company, status="todo", project=project)
    run = factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )
    client = client_for(factories.AgentApiKeyFactory(agent=agent).token, run_id=run.pk)

    response = client.post(f"/api/issues/{issue.pk}/checkout", {}, format="json")

    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["checkoutRunId"]) == (
        "in_progress",
        wire(run),
    )
    issue = Issue.objects.get(pk=issue.pk)
    assert (issue.status, issue.assignee_agent_id, issue.checkout_run_id) == (
        "in_progress",
        agent.pk,
        run.pk,
    )
