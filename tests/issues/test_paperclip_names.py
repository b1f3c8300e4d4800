"""`/api` understands the names and values Paperclip's own clients send (DESIGN §5): its field
names where they mean something here (`afterCommentId`, `blockedByIssueIds`, `labelIds`,
`goalId`), each beside ours, with both at once naming different things a 400; its vocabularies
(project and goal statuses, goal levels, agent roles, approval types, priorities). Fields that
mean nothing here are still refused, by name."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent
from companies.models import ActivityEvent
from issues.models import Approval, Goal, Issue, Project, Status
from tests import factories
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db


def details(response) -> dict:
    assert response.status_code == 400, response.json()
    body = response.json()
    assert (body["error"], body["code"]) == ("Validation failed", "validation_error")
    return body["details"]


# -- comments: afterCommentId ------------------------------------------------------------------


@pytest.fixture
def issue(company):
    return factories.IssueFactory(company=company, status="todo")


@pytest.fixture
def five(issue):
    start = timezone.now() - timedelta(hours=1)
    return [
        factories.CommentFactory(
            issue=issue, body=f"comment {i}", created_at=start + timedelta(minutes=i)
        )
        for i in range(5)
    ]


def comments(board, issue, **params):
    return board.get(f"/api/issues/{issue.pk}/comments", params)


def bodies(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [c["body"] for c in response.json()]


def test_after_comment_id_pages_like_after(board, issue, five):
    paperclips = comments(board, issue, afterCommentId=five[1].pk, order="asc")
    ours = comments(board, issue, after=five[1].pk, order="asc")

    assert bodies(paperclips) == bodies(ours) == ["comment 2", "comment 3", "comment 4"]


@pytest.mark.parametrize("form", [lambda c: c.pk, wire], ids=["prefixed", "uuid"])
def test_after_and_after_comment_id_naming_the_same_comment_are_fine(board, issue, five, form):
    response = comments(board, issue, after=five[3].pk, afterCommentId=form(five[3]))

    assert bodies(response) == ["comment 2", "comment 1", "comment 0"]


def test_after_and_after_comment_id_naming_different_comments_are_400(board, issue, five):
    response = comments(board, issue, after=five[3].pk, afterCommentId=five[1].pk)

    assert (response.status_code, response.json()) == (
        400,
        {
            "error": "after and afterCommentId name different comments: send one of them",
            "code": "validation_error",
            "details": {"after": wire(five[3]), "afterCommentId": wire(five[1])},
        },
    )


def test_after_comment_id_naming_no_comment_of_the_issue_is_400_naming_it(
    board, company, issue, five
):
    elsewhere = factories.CommentFactory(issue=factories.IssueFactory(company=company))

    response = comments(board, issue, afterCommentId=elsewhere.pk)

    assert (response.status_code, response.json()) == (
        400,
        {
            "error": "afterCommentId names no comment of this issue",
            "code": "validation_error",
            "details": {"afterCommentId": wire(elsewhere)},
        },
    )


# -- issues: blockedByIssueIds, labelIds ---------------------------------------------------------


def create_issue(board, company, **fields):
    return board.post(
        f"/api/companies/{company.pk}/issues", {"title": "Ship", **fields}, format="json"
    )


def test_blocked_by_issue_ids_on_create_are_the_dependencies(board, company):
    first, second = factories.IssueFactory.create_batch(2, company=company)

    response = create_issue(board, company, blockedByIssueIds=[first.pk, second.identifier])

    assert response.status_code == 201, response.json()
    issue = Issue.objects.get(pk=stored(response.json()["id"], Issue))
    assert set(issue.dependencies.all()) == {first, second}
    assert sorted(response.json()["dependencyIds"]) == sorted(wire([first, second]))
    assert "blockedByIssueIds" not in response.json()


def test_blocked_by_issue_ids_on_patch_replace_the_dependencies(board, company):
    old, new = factories.IssueFactory.create_batch(2, company=company)
    issue = factories.IssueFactory(company=company)
    issue.dependencies.add(old)

    response = board.patch(
        f"/api/issues/{issue.pk}", {"blockedByIssueIds": [new.pk]}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["dependencyIds"] == [wire(new)]
    assert list(issue.dependencies.all()) == [new]


def test_both_names_with_the_same_issues_are_accepted(board, company):
    blocker = factories.IssueFactory(company=company)

    response = create_issue(
        board, company, dependencyIds=[blocker.pk], blockedByIssueIds=[blocker.pk]
    )

    assert response.status_code == 201, response.json()
    assert response.json()["dependencyIds"] == [wire(blocker)]


def test_both_names_with_different_issues_are_400_and_create_nothing(board, company):
    one, two = factories.IssueFactory.create_batch(2, company=company)
    before = Issue.objects.count()

    response = create_issue(board, company, dependencyIds=[one.pk], blockedByIssueIds=[two.pk])

    assert set(details(response)) == {"dependencyIds", "blockedByIssueIds"}
    assert Issue.objects.count() == before
    assert not ActivityEvent.objects.exists()


def test_blocked_by_an_issue_of_another_company_is_400_naming_the_field(
    board, company, other_company
):
    foreign = factories.IssueFactory(company=other_company)

    response = create_issue(board, company, blockedByIssueIds=[foreign.pk])

    assert set(details(response)) == {"blockedByIssueIds"}


def test_blocked_by_itself_on_patch_is_400(board, company):
    issue = factories.IssueFactory(company=company)

    response = board.patch(
        f"/api/issues/{issue.pk}", {"blockedByIssueIds": [issue.pk]}, format="json"
    )

    assert set(details(response)) == {"dependencyIds"}
    assert not issue.dependencies.exists()


def test_label_ids_are_accepted_on_create(board, company):
    label = factories.LabelFactory(company=company)

    response = create_issue(board, company, labelIds=[label.pk])

    assert response.status_code == 201, response.json()
    assert response.json()["labelIds"] == [wire(label)]
    issue = Issue.objects.get(pk=stored(response.json()["id"], Issue))
    assert list(issue.labels.all()) == [label]


@pytest.mark.parametrize(
    "field, value",
    [
        ("projectWorkspaceId", None),
        ("executionPolicy", {"mode": "normal"}),
        ("estimate", 3),
    ],
)
def test_paperclip_fields_that_mean_nothing_here_are_still_400_by_name(
    board, company, field, value
):
    before = Issue.objects.count()

    response = create_issue(board, company, **{field: value})

    assert details(response) == {field: ["Unknown field."]}
    assert Issue.objects.count() == before


def test_the_defaults_paperclips_cli_sends_on_create_ask_for_nothing_and_are_accepted(
    board, company
):
    """`paperclipai issue create` always sends these (its schema's defaults)."""
    response = create_issue(
        board, company, workMode="standard", requestDepth=0, allowDuplicate=False, priority="medium"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["priority"] == "medium"
    assert not {"workMode", "requestDepth", "allowDuplicate"} & set(response.json())


@pytest.mark.parametrize(
    "field, value, accepted",
    [("workMode", "planning", '"standard"'), ("requestDepth", 2, "0")],
)
def test_a_behaviour_this_server_does_not_have_is_400_naming_the_value_it_accepts(
    board, company, field, value, accepted
):
    before = Issue.objects.count()

    response = create_issue(board, company, **{field: value})

    assert details(response) == {
        field: [
            f'"{value}" asks for what this server does not do: send {accepted}, or leave it out.'
        ]
    }
    assert Issue.objects.count() == before


# -- projects: goalId ----------------------------------------------------------------------------


def test_project_goal_id_is_one_goal_ids(board, company):
    goal = factories.GoalFactory(company=company)

    response = board.post(
        f"/api/companies/{company.pk}/projects", {"name": "Site", "goalId": goal.pk}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["goalIds"] == [wire(goal)]
    assert "goalId" not in response.json()
    assert list(Project.objects.get().goals.all()) == [goal]


def test_project_goal_id_null_on_patch_clears_the_goals(board, company):
    project = factories.ProjectFactory(company=company)
    project.goals.add(factories.GoalFactory(company=company))

    response = board.patch(f"/api/projects/{project.pk}", {"goalId": None}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["goalIds"] == []
    assert not project.goals.exists()


def test_project_goal_id_and_goal_ids_naming_different_goals_are_400(board, company):
    one, two = factories.GoalFactory.create_batch(2, company=company)

    response = board.post(
        f"/api/companies/{company.pk}/projects",
        {"name": "Site", "goalId": one.pk, "goalIds": [one.pk, two.pk]},
        format="json",
    )

    assert set(details(response)) == {"goalId", "goalIds"}
    assert not Project.objects.exists()


def test_project_goal_id_of_another_company_is_400(board, company, other_company):
    foreign = factories.GoalFactory(company=other_company)

    response = board.post(
        f"/api/companies/{company.pk}/projects",
        {"name": "Site", "goalId": foreign.pk},
        format="json",
    )

    assert set(details(response)) == {"goalId"}
    assert not Project.objects.exists()


# -- Paperclip's vocabularies --------------------------------------------------------------------


@pytest.mark.parametrize("status", ["backlog", "planned", "in_progress", "completed", "cancelled"])
def test_every_paperclip_project_status_is_accepted(board, company, status):
    response = board.post(
        f"/api/companies/{company.pk}/projects", {"name": "P", "status": status}, format="json"
    )

    assert (response.status_code, response.json()["status"]) == (201, status)
    assert Project.objects.get().status == status


@pytest.mark.parametrize("level", ["company", "team", "agent", "task"])
@pytest.mark.parametrize("status", ["planned", "active", "achieved", "cancelled"])
def test_every_paperclip_goal_level_and_status_is_accepted(board, company, level, status):
    response = board.post(
        f"/api/companies/{company.pk}/goals",
        {"title": "G", "level": level, "status": status},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert (Goal.objects.get().level, Goal.objects.get().status) == (level, status)


@pytest.mark.parametrize("priority", ["critical", "high", "medium", "low"])
def test_every_paperclip_issue_priority_is_accepted(board, company, priority):
    response = create_issue(board, company, priority=priority)

    assert (response.status_code, response.json()["priority"]) == (201, priority)


def test_every_paperclip_issue_status_is_one_of_ours():
    paperclips = {"backlog", "todo", "in_progress", "in_review", "done", "blocked", "cancelled"}

    # Ours add `failed` (DESIGN §2); none of Paperclip's is missing.
    assert set(Status.values) - paperclips == {"failed"}


def test_security_is_an_agent_role(board, company):
    response = board.post(
        f"/api/companies/{company.pk}/agents",
        {"name": "Sentinel", "role": "security"},
        format="json",
    )

    assert (response.status_code, response.json()["role"]) == (201, "security")
    assert Agent.objects.get(name="Sentinel").role == "security"


def test_request_board_approval_is_requested_and_approved_like_any_approval(
    agent_client, board, company, agent
):
    created = agent_client.post(
        f"/api/companies/{company.pk}/approvals",
        {"type": "request_board_approval", "payload": {"question": "Ship on Friday?"}},
        format="json",
    )

    assert created.status_code == 201, created.json()
    assert (created.json()["type"], created.json()["status"]) == (
        "request_board_approval",
        "pending",
    )
    approval = Approval.objects.get()

    approved = board.post(f"/api/approvals/{approval.pk}/approve", {}, format="json")

    assert (approved.status_code, approved.json()["status"]) == (200, "approved")
    approval.refresh_from_db()
    assert (approval.type, approval.status) == ("request_board_approval", "approved")
    assert Agent.objects.filter(company=company).count() == 1  # no hire: nothing else happens


# -- approvals: the requester and the decider are the caller -------------------------------------


@pytest.mark.parametrize("form", [lambda a: a.pk, wire], ids=["prefixed", "uuid"])
def test_an_agent_naming_itself_as_requester_creates_the_approval(agent_client, agent, form):
    response = agent_client.post(
        f"/api/companies/{agent.company_id}/approvals",
        {"type": "approve_ceo_strategy", "requestedByAgentId": form(agent)},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["requestedByAgentId"] == wire(agent)


def test_naming_another_agent_as_requester_is_400_and_creates_nothing(agent_client, agent):
    other = factories.AgentFactory(company=agent.company, name="Other")

    response = agent_client.post(
        f"/api/companies/{agent.company_id}/approvals",
        {"type": "approve_ceo_strategy", "requestedByAgentId": wire(other)},
        format="json",
    )

    assert details(response) == {"requestedByAgentId": ["Must name the caller (or be left out)."]}
    assert not Approval.objects.exists()


def test_the_board_deciding_as_itself_is_accepted_and_as_another_user_is_400(
    board, board_user, company
):
    approval = Approval.objects.create(company=company, type="approve_ceo_strategy")
    other = factories.UserFactory(username="bob")

    refused = board.post(
        f"/api/approvals/{approval.pk}/approve", {"decidedByUserId": wire(other)}, format="json"
    )
    approved = board.post(
        f"/api/approvals/{approval.pk}/approve",
        {"decidedByUserId": wire(board_user), "decisionNote": "Go"},
        format="json",
    )

    assert details(refused) == {"decidedByUserId": ["Must name the caller (or be left out)."]}
    assert approved.status_code == 200, approved.json()
    assert (approved.json()["status"], approved.json()["decidedByUserId"]) == (
        "approved",
        wire(board_user),
    )
