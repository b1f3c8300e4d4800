"""The issue lifecycle over HTTP (DESIGN §2): every edge a PATCH may take, the ones it may not,
the invariants (one assignee, in_progress needs one, terminal issues are frozen), the board's
reopen, and the initial status of a new issue."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.utils import timezone

from companies.models import ActivityEvent
from issues.models import Comment, Issue
from tests import factories
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db

TERMINAL = ("done", "cancelled", "failed")
FINISH_STAMP = {"done": "completedAt", "cancelled": "cancelledAt", "failed": "failedAt"}
STAMPS = ("startedAt", "completedAt", "cancelledAt", "failedAt")

# DESIGN §2's table, minus the edges only checkout may take (into in_progress from backlog,
# in_review and blocked) and minus reopen (a separate board action).
PATCH_EDGES = [
    ("backlog", "todo"),
    ("backlog", "blocked"),
    ("backlog", "cancelled"),
    ("todo", "backlog"),
    ("todo", "in_progress"),
    ("todo", "blocked"),
    ("todo", "cancelled"),
    ("in_progress", "todo"),
    ("in_progress", "in_review"),
    ("in_progress", "blocked"),
    ("in_progress", "done"),
    ("in_progress", "cancelled"),
    ("in_progress", "failed"),
    ("in_review", "todo"),
    ("in_review", "blocked"),
    ("in_review", "done"),
    ("in_review", "cancelled"),
    ("blocked", "todo"),
    ("blocked", "backlog"),
    ("blocked", "cancelled"),
]

# (from, to, what `details.allowed` must list: the PATCH targets of `from`, in lifecycle order).
FORBIDDEN_EDGES = [
    ("backlog", "done", ["todo", "blocked", "cancelled"]),
    ("todo", "done", ["backlog", "in_progress", "blocked", "cancelled"]),
    ("in_review", "failed", ["todo", "blocked", "done", "cancelled"]),
    ("done", "todo", []),
    ("cancelled", "in_progress", []),
    ("backlog", "in_progress", ["todo", "blocked", "cancelled"]),
]


def issue_url(issue: Issue) -> str:
    return f"/api/issues/{issue.pk}"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def activity(issue: Issue, action: str | None = None):
    rows = ActivityEvent.objects.filter(issue_id=issue.pk)
    return rows.filter(action=action) if action else rows


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user_assignee(company):
    """A second board user of the company, to assign issues to."""
    return factories.MembershipFactory(company=company, user__username="bob").user


# -- every allowed PATCH edge ----------------------------------------------------------------


@pytest.mark.parametrize(("source", "target"), PATCH_EDGES)
def test_board_patch_moves_issue_along_every_allowed_edge(
    board, board_user, company, agent, source, target
):
    run = factories.HeartbeatRunFactory(agent=agent, status="running")
    issue = factories.IssueFactory(
        company=company,
        status=source,
        assignee_agent=agent,
        checkout_run=run if source == "in_progress" else None,
    )
    before = timezone.now()

    response = board.patch(issue_url(issue), {"status": target}, format="json")

    after = timezone.now()
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == target
    assert body["assigneeAgentId"] == wire(agent)
    # Entering in_progress stamps startedAt; entering a terminal state stamps its own time.
    expected_stamps = {"startedAt"} if target == "in_progress" else set()
    if target in FINISH_STAMP:
        expected_stamps.add(FINISH_STAMP[target])
    assert {name for name in STAMPS if body[name] is not None} == expected_stamps
    for name in expected_stamps:
        assert before <= parse_time(body[name]) <= after
    if source == "in_progress":
        assert body["checkoutRunId"] is None  # leaving in_progress releases the lock

    issue.refresh_from_db()
    assert issue.status == target
    assert issue.version == 2
    assert body["version"] == 2
    if source == "in_progress":
        assert issue.checkout_run_id is None
    [row] = activity(issue)
    assert row.action == "issue.updated"
    assert (row.actor_type, row.actor_id) == ("user", board_user.pk)
    assert (row.entity_type, row.entity_id) == ("issue", issue.pk)
    assert row.details["changes"]["status"] == {"from": source, "to": target}


def test_patch_to_the_current_status_changes_nothing_and_logs_nothing(board, company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = board.patch(issue_url(issue), {"status": "todo"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "todo"
    issue.refresh_from_db()
    assert (issue.status, issue.version) == ("todo", 1)
    assert not activity(issue).exists()


# -- forbidden edges -------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "target", "allowed"), FORBIDDEN_EDGES)
def test_forbidden_transition_is_422_naming_the_allowed_targets_and_changes_nothing(
    board, company, agent, source, target, allowed
):
    issue = factories.IssueFactory(company=company, status=source, assignee_agent=agent)

    response = board.patch(issue_url(issue), {"status": target}, format="json")

    assert response.status_code == 422
    assert response.json() == {
        "error": "Invalid state transition",
        "code": "invalid_transition",
        "details": {"from": source, "to": target, "allowed": allowed},
    }
    issue.refresh_from_db()
    assert (issue.status, issue.version) == (source, 1)
    assert not activity(issue).exists()


def test_forbidden_transition_rolls_back_the_other_fields_of_the_same_patch(board, company, agent):
    issue = factories.IssueFactory(company=company, status="backlog", title="Old title")

    response = board.patch(
        issue_url(issue), {"title": "New title", "status": "done"}, format="json"
    )

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_transition"
    issue.refresh_from_db()
    assert (issue.title, issue.status, issue.version) == ("Old title", "backlog", 1)
    assert not activity(issue).exists()


# -- invariants ------------------------------------------------------------------------------


def test_starting_an_unassigned_issue_is_422_assignee_required(board, company):
    issue = factories.IssueFactory(company=company, status="todo")

    response = board.patch(issue_url(issue), {"status": "in_progress"}, format="json")

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "assignee_required"
    assert isinstance(body["error"], str) and body["error"]
    issue.refresh_from_db()
    assert (issue.status, issue.started_at, issue.version) == ("todo", None, 1)
    assert not activity(issue).exists()


def test_starting_an_issue_assigned_to_a_user_is_allowed(board, company, user_assignee):
    issue = factories.IssueFactory(company=company, status="todo", assignee_user=user_assignee)

    response = board.patch(issue_url(issue), {"status": "in_progress"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["assigneeUserId"] == wire(user_assignee)
    issue.refresh_from_db()
    assert issue.status == "in_progress"
    assert issue.started_at is not None


def test_unassigning_an_in_progress_issue_is_422_and_keeps_the_assignee(board, company, agent):
    run = factories.HeartbeatRunFactory(agent=agent, status="running")
    issue = factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=agent, checkout_run=run
    )

    response = board.patch(issue_url(issue), {"assigneeAgentId": None}, format="json")

    assert response.status_code == 422
    assert response.json()["code"] == "assignee_required"
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id, issue.checkout_run_id) == (
        "in_progress",
        agent.pk,
        run.pk,
    )
    assert issue.version == 1
    assert not activity(issue).exists()


def test_unassigning_and_moving_to_todo_in_one_patch_is_allowed(board, company, agent):
    issue = factories.IssueFactory(company=company, status="in_progress", assignee_agent=agent)

    response = board.patch(
        issue_url(issue), {"assigneeAgentId": None, "status": "todo"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["assigneeAgentId"]) == ("todo", None)
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id) == ("todo", None)


def test_patch_naming_both_an_agent_and_a_user_assignee_is_422_one_assignee(
    board, company, agent, user_assignee
):
    issue = factories.IssueFactory(company=company, status="todo")

    response = board.patch(
        issue_url(issue),
        {"assigneeAgentId": agent.pk, "assigneeUserId": user_assignee.pk},
        format="json",
    )

    assert response.status_code == 422
    assert response.json()["code"] == "one_assignee"
    issue.refresh_from_db()
    assert (issue.assignee_agent_id, issue.assignee_user_id, issue.version) == (None, None, 1)
    assert not activity(issue).exists()


def test_create_naming_both_an_agent_and_a_user_assignee_is_422_one_assignee(
    board, company, agent, user_assignee
):
    response = board.post(
        f"/api/companies/{company.pk}/issues",
        {"title": "Two owners", "assigneeAgentId": agent.pk, "assigneeUserId": user_assignee.pk},
        format="json",
    )

    assert response.status_code == 422
    assert response.json()["code"] == "one_assignee"
    assert not Issue.objects.filter(company=company).exists()
    company.refresh_from_db()
    assert company.issue_counter == 0


def test_assigning_a_user_replaces_the_agent_assignee(board, company, agent, user_assignee):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = board.patch(issue_url(issue), {"assigneeUserId": user_assignee.pk}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["assigneeAgentId"], body["assigneeUserId"]) == (None, wire(user_assignee))
    issue.refresh_from_db()
    assert (issue.assignee_agent_id, issue.assignee_user_id) == (None, user_assignee.pk)


@pytest.mark.parametrize("status", TERMINAL)
def test_terminal_issue_fields_are_frozen_422_issue_frozen(board, company, agent, status):
    issue = factories.IssueFactory(
        company=company, status=status, assignee_agent=agent, title="Shipped"
    )

    response = board.patch(issue_url(issue), {"title": "Rewritten history"}, format="json")

    assert response.status_code == 422
    assert response.json()["code"] == "issue_frozen"
    issue.refresh_from_db()
    assert (issue.title, issue.status, issue.version) == ("Shipped", status, 1)
    assert not activity(issue).exists()


def test_terminal_issue_still_takes_comments(board, company, agent):
    issue = factories.IssueFactory(company=company, status="done", assignee_agent=agent)

    response = board.post(f"{issue_url(issue)}/comments", {"body": "Post-mortem"}, format="json")

    assert response.status_code == 201
    assert response.json()["body"] == "Post-mortem"
    issue.refresh_from_db()
    assert issue.status == "done"
    assert list(issue.comments.values_list("body", flat=True)) == ["Post-mortem"]


def test_agent_cannot_patch_its_issue_to_in_progress_422_checkout_required(
    agent_client, company, agent
):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = agent_client.patch(issue_url(issue), {"status": "in_progress"}, format="json")

    assert response.status_code == 422
    assert response.json()["code"] == "checkout_required"
    issue.refresh_from_db()
    assert (issue.status, issue.started_at, issue.version) == ("todo", None, 1)
    assert not activity(issue).exists()


def test_agent_may_block_its_own_todo_issue(agent_client, company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = agent_client.patch(issue_url(issue), {"status": "blocked"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "blocked"
    issue.refresh_from_db()
    assert issue.status == "blocked"
    [row] = activity(issue)
    assert (row.actor_type, row.actor_id) == ("agent", agent.pk)


# -- reopen ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", TERMINAL)
def test_board_reopen_brings_an_assigned_issue_back_to_todo(
    board, board_user, company, agent, status
):
    issue = factories.IssueFactory(company=company, status=status, assignee_agent=agent)

    response = board.post(f"{issue_url(issue)}/reopen")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["assigneeAgentId"]) == ("todo", wire(agent))
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id) == ("todo", agent.pk)
    [row] = activity(issue)
    assert row.action == "issue.reopened"
    assert (row.actor_type, row.actor_id) == ("user", board_user.pk)
    assert row.details["reopenedFrom"] == status


@pytest.mark.parametrize("status", TERMINAL)
def test_board_reopen_brings_an_unassigned_issue_back_to_backlog(board, company, status):
    issue = factories.IssueFactory(company=company, status=status)

    response = board.post(f"{issue_url(issue)}/reopen")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "backlog"
    issue.refresh_from_db()
    assert issue.status == "backlog"
    [row] = activity(issue)
    assert row.action == "issue.reopened"
    assert row.details["reopenedFrom"] == status


def test_reopened_issue_can_be_edited_again(board, company, agent):
    issue = factories.IssueFactory(company=company, status="done", assignee_agent=agent)
    assert board.post(f"{issue_url(issue)}/reopen").status_code == 200

    response = board.patch(issue_url(issue), {"title": "Round two"}, format="json")

    assert response.status_code == 200, response.json()
    issue.refresh_from_db()
    assert (issue.title, issue.status) == ("Round two", "todo")


def test_board_reopen_by_identifier(board, company, agent):
    issue = factories.IssueFactory(company=company, status="cancelled", assignee_agent=agent)

    response = board.post(f"/api/issues/{issue.identifier.lower()}/reopen")

    assert response.status_code == 200, response.json()
    assert response.json()["id"] == wire(issue)
    issue.refresh_from_db()
    assert issue.status == "todo"


def test_patch_with_reopen_true_reopens_and_applies_the_fields(board, company, agent):
    issue = factories.IssueFactory(
        company=company, status="done", assignee_agent=agent, title="Shipped"
    )

    response = board.patch(
        issue_url(issue), {"reopen": True, "title": "Shipped, then not"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["title"]) == ("todo", "Shipped, then not")
    issue.refresh_from_db()
    assert (issue.status, issue.title) == ("todo", "Shipped, then not")
    [reopened] = activity(issue, "issue.reopened")
    assert reopened.details["reopenedFrom"] == "done"


def test_patch_with_reopen_true_alone_reopens(board, company):
    issue = factories.IssueFactory(company=company, status="failed")

    response = board.patch(issue_url(issue), {"reopen": True}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "backlog"
    issue.refresh_from_db()
    assert issue.status == "backlog"
    assert [row.action for row in activity(issue)] == ["issue.reopened"]


def test_comment_with_reopen_true_reopens_and_adds_the_comment(board, company, agent):
    issue = factories.IssueFactory(company=company, status="done", assignee_agent=agent)

    response = board.post(
        f"{issue_url(issue)}/comments",
        {"body": "Not fixed after all", "reopen": True},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["body"] == "Not fixed after all"
    issue.refresh_from_db()
    assert issue.status == "todo"
    assert list(issue.comments.values_list("body", flat=True)) == ["Not fixed after all"]
    [reopened] = activity(issue, "issue.reopened")
    assert reopened.details["reopenedFrom"] == "done"
    assert activity(issue, "issue.comment_added").count() == 1


def test_reopen_on_an_open_issue_changes_nothing_and_logs_nothing(board, company, agent):
    issue = factories.IssueFactory(company=company, status="in_review", assignee_agent=agent)

    response = board.post(f"{issue_url(issue)}/reopen")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "in_review"
    issue.refresh_from_db()
    assert (issue.status, issue.version) == ("in_review", 1)
    assert not activity(issue).exists()


def test_patch_reopen_true_on_an_open_issue_changes_nothing_and_logs_nothing(board, company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = board.patch(issue_url(issue), {"reopen": True}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "todo"
    issue.refresh_from_db()
    assert (issue.status, issue.version) == ("todo", 1)
    assert not activity(issue).exists()


def test_comment_reopen_true_on_an_open_issue_only_adds_the_comment(board, company):
    issue = factories.IssueFactory(company=company, status="blocked")

    response = board.post(
        f"{issue_url(issue)}/comments", {"body": "Still blocked", "reopen": True}, format="json"
    )

    assert response.status_code == 201, response.json()
    issue.refresh_from_db()
    assert (issue.status, issue.version) == ("blocked", 1)
    assert [row.action for row in activity(issue)] == ["issue.comment_added"]


def test_agent_cannot_reopen_through_the_reopen_endpoint(agent_client, company, agent):
    issue = factories.IssueFactory(company=company, status="done", assignee_agent=agent)

    response = agent_client.post(f"{issue_url(issue)}/reopen")

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    issue.refresh_from_db()
    assert (issue.status, issue.version) == ("done", 1)
    assert not activity(issue).exists()


def test_agent_cannot_reopen_through_patch(agent_client, company, agent):
    issue = factories.IssueFactory(company=company, status="done", assignee_agent=agent)

    response = agent_client.patch(issue_url(issue), {"reopen": True}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    issue.refresh_from_db()
    assert (issue.status, issue.version) == ("done", 1)
    assert not activity(issue).exists()


def test_agent_cannot_reopen_through_a_comment_and_the_comment_is_not_kept(
    agent_client, company, agent
):
    issue = factories.IssueFactory(company=company, status="done", assignee_agent=agent)

    response = agent_client.post(
        f"{issue_url(issue)}/comments", {"body": "Let me redo this", "reopen": True}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    issue.refresh_from_db()
    assert (issue.status, issue.version) == ("done", 1)
    assert not Comment.objects.filter(issue=issue).exists()
    assert not activity(issue).exists()


# -- the initial status of a new issue -------------------------------------------------------


def create(client, company, **fields):
    return client.post(
        f"/api/companies/{company.pk}/issues", {"title": "New work", **fields}, format="json"
    )


def test_new_issue_with_an_assignee_starts_in_todo(board, company, agent):
    response = create(board, company, assigneeAgentId=agent.pk)

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "todo"
    assert Issue.objects.get(pk=stored(response.json()["id"], Issue)).status == "todo"


def test_new_issue_with_a_user_assignee_starts_in_todo(board, company, user_assignee):
    response = create(board, company, assigneeUserId=user_assignee.pk)

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "todo"
    assert Issue.objects.get(pk=stored(response.json()["id"], Issue)).status == "todo"


def test_new_issue_without_an_assignee_starts_in_backlog(board, company):
    response = create(board, company)

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "backlog"
    issue = Issue.objects.get(pk=stored(response.json()["id"], Issue))
    assert (issue.status, issue.started_at, issue.completed_at) == ("backlog", None, None)


@pytest.mark.parametrize("status", ["backlog", "todo", "blocked"])
@pytest.mark.parametrize("assigned", [True, False], ids=["assigned", "unassigned"])
def test_new_issue_may_start_in_an_explicit_initial_status(board, company, agent, status, assigned):
    fields = {"status": status}
    if assigned:
        fields["assigneeAgentId"] = agent.pk

    response = create(board, company, **fields)

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == status
    assert Issue.objects.get(pk=stored(response.json()["id"], Issue)).status == status


@pytest.mark.parametrize("status", ["in_progress", "in_review", "done", "cancelled", "failed"])
def test_new_issue_in_any_other_status_is_422_invalid_transition(board, company, agent, status):
    response = create(board, company, status=status, assigneeAgentId=agent.pk)

    assert response.status_code == 422
    body = response.json()
    assert (body["error"], body["code"]) == ("Invalid state transition", "invalid_transition")
    assert body["details"]["to"] == status
    assert sorted(body["details"]["allowed"]) == ["backlog", "blocked", "todo"]
    assert not Issue.objects.filter(company=company).exists()
    company.refresh_from_db()
    assert company.issue_counter == 0
    assert not ActivityEvent.objects.filter(company=company).exists()
