"""Pausing a project is not a status (DESIGN §5): `POST /api/projects/{id}/pause` sets
`pausedAt` and `pauseReason`, keeps the status, and the project's issues refuse checkout until
`POST /api/projects/{id}/resume`. Each verb writes one activity row; repeating it changes
nothing. The admin pauses and resumes through the same services."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from agents.models import HeartbeatRun
from companies.models import ActivityEvent, Membership
from issues.models import Project
from tests import factories
from tests.admin import messages_of
from tests.conftest import client_for, iso
from tests.wire import wire

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "Not found", "code": "not_found"}


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
        "targetDate": None,
        "pausedAt": iso(project.paused_at) if project.paused_at else None,
        "pauseReason": project.pause_reason or None,
        "createdAt": iso(project.created_at),
        "updatedAt": iso(project.updated_at),
    }


def rows(action: str) -> list[ActivityEvent]:
    return list(ActivityEvent.objects.filter(action=action))


def live_client(agent):
    run = factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )
    return client_for(factories.AgentApiKeyFactory(agent=agent).token, run_id=run.pk)


@pytest.fixture
def project(company):
    return factories.ProjectFactory(company=company, name="Website", status="in_progress")


def test_board_pauses_a_project_with_a_reason_keeping_its_status(board, board_user, project):
    before = timezone.now()

    response = board.post(
        f"/api/projects/{project.pk}/pause", {"reason": "Waiting on legal"}, format="json"
    )

    assert response.status_code == 200, response.json()
    project.refresh_from_db()
    assert response.json() == project_body(project)
    assert response.json()["pauseReason"] == "Waiting on legal"
    assert (project.status, project.pause_reason) == ("in_progress", "Waiting on legal")
    assert project.paused_at >= before
    [row] = rows("project.paused")
    assert (row.entity_type, row.entity_id, row.actor_type, row.actor_id, row.details) == (
        "project",
        project.pk,
        "user",
        board_user.pk,
        {"reason": "Waiting on legal"},
    )


def test_pause_without_a_body_is_a_manual_pause(board, project):
    response = board.post(f"/api/projects/{project.pk}/pause")

    assert response.status_code == 200, response.json()
    project.refresh_from_db()
    assert (response.json()["pauseReason"], project.pause_reason) == ("manual", "manual")
    assert response.json()["pausedAt"] == iso(project.paused_at)


@pytest.mark.parametrize("verb", ["pause", "resume"])
def test_an_agent_may_neither_pause_nor_resume_a_project(board, agent, project, verb):
    board.post(f"/api/projects/{project.pk}/pause", {}, format="json")
    paused_at = Project.objects.get(pk=project.pk).paused_at

    response = live_client(agent).post(f"/api/projects/{project.pk}/{verb}", {}, format="json")

    assert response.status_code == 403
    assert response.json() == {"error": "Board access required", "code": "forbidden"}
    project.refresh_from_db()
    assert project.paused_at == paused_at
    assert len(rows("project.paused")) == 1 and not rows("project.resumed")


def test_pausing_a_paused_project_changes_nothing_and_logs_nothing(board, project):
    board.post(f"/api/projects/{project.pk}/pause", {"reason": "first"}, format="json")
    paused_at = Project.objects.get(pk=project.pk).paused_at

    again = board.post(f"/api/projects/{project.pk}/pause", {"reason": "second"}, format="json")

    assert again.status_code == 200
    project.refresh_from_db()
    assert (project.paused_at, project.pause_reason) == (paused_at, "first")
    assert again.json() == project_body(project)
    assert len(rows("project.paused")) == 1


def test_resume_clears_the_pause_and_logs_what_it_was(board, project):
    board.post(f"/api/projects/{project.pk}/pause", {"reason": "audit"}, format="json")

    response = board.post(f"/api/projects/{project.pk}/resume")

    assert response.status_code == 200, response.json()
    project.refresh_from_db()
    assert (project.status, project.paused_at, project.pause_reason) == ("in_progress", None, "")
    assert response.json() == project_body(project)
    assert (response.json()["pausedAt"], response.json()["pauseReason"]) == (None, None)
    [row] = rows("project.resumed")
    assert row.entity_id == project.pk
    assert row.details["previous"]["reason"] == "audit"
    assert row.details["previous"]["pausedAt"]


def test_resuming_a_project_that_is_not_paused_changes_nothing(board, project):
    response = board.post(f"/api/projects/{project.pk}/resume")

    assert response.status_code == 200
    assert response.json() == project_body(project)
    assert not ActivityEvent.objects.exists()


def test_a_paused_project_refuses_checkout_and_a_resumed_one_allows_it(board, agent, company):
    project = factories.ProjectFactory(company=company, status="in_progress")
    issue = factories.IssueFactory(
        company=company, status="todo", project=project, assignee_agent=agent
    )
    board.post(f"/api/projects/{project.pk}/pause", {}, format="json")

    refused = live_client(agent).post(f"/api/issues/{issue.pk}/checkout", {}, format="json")

    assert refused.status_code == 409
    assert refused.json() == {
        "error": "Project is paused",
        "code": "project_paused",
        "details": {"issueId": wire(issue)},
    }
    issue.refresh_from_db()
    assert (issue.status, issue.checkout_run_id) == ("todo", None)

    board.post(f"/api/projects/{project.pk}/resume")
    allowed = live_client(agent).post(f"/api/issues/{issue.pk}/checkout", {}, format="json")

    assert allowed.status_code == 200, allowed.json()
    issue.refresh_from_db()
    assert issue.status == "in_progress"


def test_pause_reason_that_is_too_long_or_unknown_fields_are_400(board, project):
    too_long = board.post(f"/api/projects/{project.pk}/pause", {"reason": "x" * 501}, format="json")
    unknown = board.post(f"/api/projects/{project.pk}/pause", {"until": "monday"}, format="json")
    resume_unknown = board.post(
        f"/api/projects/{project.pk}/resume", {"reason": "why"}, format="json"
    )

    assert (too_long.status_code, set(too_long.json()["details"])) == (400, {"reason"})
    assert unknown.json() == {
        "error": "Validation failed",
        "code": "validation_error",
        "details": {"until": ["Unknown field."]},
    }
    assert (resume_unknown.status_code, resume_unknown.json()["details"]) == (
        400,
        {"reason": ["Unknown field."]},
    )
    project.refresh_from_db()
    assert project.paused_at is None
    assert not ActivityEvent.objects.exists()


def test_paused_at_and_pause_reason_are_not_written_by_patch(board, project):
    response = board.patch(
        f"/api/projects/{project.pk}",
        {"pausedAt": "2030-01-01T00:00:00Z", "pauseReason": "sneaky"},
        format="json",
    )

    assert response.status_code == 200
    project.refresh_from_db()
    assert (project.paused_at, project.pause_reason) == (None, "")


def test_paused_is_no_longer_a_project_status(board, project):
    response = board.patch(f"/api/projects/{project.pk}", {"status": "paused"}, format="json")

    assert response.status_code == 400
    assert set(response.json()["details"]) == {"status"}
    project.refresh_from_db()
    assert (project.status, project.paused_at) == ("in_progress", None)


def test_a_read_only_member_may_not_pause(company, project):
    viewer = factories.UserFactory()
    factories.MembershipFactory(user=viewer, company=company, role=Membership.Role.VIEWER)
    client = client_for(factories.BoardTokenFactory(user=viewer).token)

    response = client.post(f"/api/projects/{project.pk}/pause", {}, format="json")

    assert response.status_code == 403
    assert response.json()["error"] == "Your membership in this company is read-only"
    project.refresh_from_db()
    assert project.paused_at is None


def test_another_companys_project_and_a_bad_id_are_404(other_board, project):
    for url in (
        f"/api/projects/{project.pk}/pause",
        f"/api/projects/{project.pk}/resume",
        "/api/projects/prj_00000000000000000000000000/pause",
    ):
        response = other_board.post(url, {}, format="json")
        assert (response.status_code, response.json()) == (404, NOT_FOUND), url
    project.refresh_from_db()
    assert project.paused_at is None


# -- the admin ---------------------------------------------------------------------------------


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def test_admin_pauses_and_resumes_selected_projects_through_the_services(staff, company, project):
    changelist = reverse("admin:issues_project_changelist")

    paused = staff.post(
        changelist, {"action": "pause_selected", "_selected_action": [project.pk]}, follow=True
    )

    assert paused.status_code == 200
    assert "1 project(s) paused." in messages_of(paused)
    project.refresh_from_db()
    assert (project.paused_at is not None, project.pause_reason) == (True, "manual")
    assert len(rows("project.paused")) == 1

    page = staff.get(reverse("admin:issues_project_change", args=[project.pk]))
    assert page.status_code == 200
    assert "Paused at" in page.content.decode()

    resumed = staff.post(
        changelist, {"action": "resume_selected", "_selected_action": [project.pk]}, follow=True
    )

    assert "1 project(s) resumed." in messages_of(resumed)
    project.refresh_from_db()
    assert project.paused_at is None
    assert len(rows("project.resumed")) == 1
