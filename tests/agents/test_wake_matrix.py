"""Who an issue event wakes (Paperclip's wake matrix).

Assignment (on create or PATCH) wakes the assignee, except while the issue is in backlog;
leaving backlog wakes the assignee; a comment wakes the assignee unless they wrote it or the
issue is finished; the board's checkout on an agent's behalf and the board's reopen wake that
agent. One request wakes an agent at most once; paused agents are not woken by events; a wake
for an agent whose run for the issue is still queued merges into that run. @-mentions have
their own file (tests/issues/test_mentions.py).

Every wake is a `WakeupRequest`; a new run is a queued `HeartbeatRun` naming the issue.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from agents.models import Agent, HeartbeatRun, WakeupRequest
from issues.models import Comment, Issue
from tests import factories
from tests.conftest import client_for
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def peer(company):
    return factories.AgentFactory(company=company, name="Rival")


@pytest.fixture
def paused(company):
    return factories.AgentFactory(company=company, name="Sleeper", status=Agent.Status.PAUSED)


def key_of(agent: Agent, run: HeartbeatRun | None = None):
    return client_for(factories.AgentApiKeyFactory(agent=agent).token, run_id=run and run.pk)


def wakeups(agent: Agent) -> list[WakeupRequest]:
    """The agent's wakes, oldest first."""
    return list(
        WakeupRequest.objects.filter(agent=agent).select_related("run").order_by("created_at", "id")
    )


def all_wakeups() -> list[tuple[str, str]]:
    """(agent name, reason) of every wake there is."""
    rows = WakeupRequest.objects.select_related("agent").order_by("created_at", "id")
    return [(row.agent.name, row.reason) for row in rows]


def assert_woken_once(agent: Agent, issue_id: str, reason: str, source: str, **context) -> None:
    """Exactly one wake, into a new queued run for the issue whose context says why."""
    [wake] = wakeups(agent)
    assert (wake.reason, wake.source, wake.coalesced) == (reason, source, False)
    run = wake.run
    assert (run.agent_id, run.issue_id, run.status, run.wake_reason) == (
        agent.pk,
        issue_id,
        "queued",
        reason,
    )
    assert run.context == {"wakeReason": reason, "taskId": issue_id, "issueId": issue_id, **context}
    assert HeartbeatRun.objects.filter(agent=agent).count() == 1


def create_issue(client, company, **fields):
    fields.setdefault("title", "Ship the release")
    return client.post(f"/api/companies/{company.pk}/issues", fields, format="json")


def patch(client, issue_id: str, body: dict):
    return client.patch(f"/api/issues/{issue_id}", body, format="json")


def comment(client, issue_id: str, body: str, **extra):
    return client.post(f"/api/issues/{issue_id}/comments", {"body": body, **extra}, format="json")


# -- assignment ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [None, "todo", "blocked"])
def test_creating_an_issue_assigned_to_an_agent_wakes_it(board, board_user, company, agent, status):
    fields = {"assigneeAgentId": agent.pk} | ({"status": status} if status else {})

    response = create_issue(board, company, **fields)

    assert response.status_code == 201, response.json()
    issue_id = stored(response.json()["id"], Issue)
    assert_woken_once(agent, issue_id, "issue_assigned", "assignment")
    [wake] = wakeups(agent)
    assert (wake.requested_by_type, wake.requested_by_id) == ("user", board_user.pk)


def test_creating_an_assigned_issue_in_backlog_wakes_nobody(board, company, agent):
    response = create_issue(board, company, assigneeAgentId=agent.pk, status="backlog")

    assert response.status_code == 201, response.json()
    assert all_wakeups() == []
    assert not HeartbeatRun.objects.exists()


def test_creating_an_unassigned_issue_wakes_nobody(board, company, agent):
    response = create_issue(board, company, status="todo")

    assert response.status_code == 201, response.json()
    assert all_wakeups() == []


def test_assigning_an_issue_by_patch_wakes_the_assignee(board, company, agent):
    issue = factories.IssueFactory(company=company, status="todo")

    response = patch(board, issue.pk, {"assigneeAgentId": agent.pk})

    assert response.status_code == 200, response.json()
    assert_woken_once(agent, issue.pk, "issue_assigned", "assignment")


def test_an_agent_assigning_an_issue_to_another_agent_wakes_it(company, agent, peer):
    issue = factories.IssueFactory(company=company, status="todo")

    response = patch(key_of(agent), issue.pk, {"assigneeAgentId": peer.pk})

    assert response.status_code == 200, response.json()
    assert_woken_once(peer, issue.pk, "issue_assigned", "assignment")
    [wake] = wakeups(peer)
    assert (wake.requested_by_type, wake.requested_by_id) == ("agent", agent.pk)
    assert wakeups(agent) == []


def test_reassigning_an_issue_wakes_only_the_new_assignee(board, company, agent, peer):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = patch(board, issue.pk, {"assigneeAgentId": peer.pk})

    assert response.status_code == 200, response.json()
    assert all_wakeups() == [("Rival", "issue_assigned")]


def test_assigning_a_backlog_issue_wakes_nobody(board, company, agent):
    issue = factories.IssueFactory(company=company, status="backlog")

    response = patch(board, issue.pk, {"assigneeAgentId": agent.pk})

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "backlog"
    assert all_wakeups() == []


def test_naming_the_same_assignee_again_wakes_nobody(board, company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = patch(board, issue.pk, {"assigneeAgentId": agent.pk, "title": "Renamed"})

    assert response.status_code == 200, response.json()
    assert all_wakeups() == []


def test_editing_an_assigned_issue_wakes_nobody(board, company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = patch(board, issue.pk, {"title": "Sharper title", "priority": "high"})

    assert response.status_code == 200, response.json()
    assert all_wakeups() == []


# -- leaving backlog -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["todo", "blocked"])
def test_moving_an_assigned_issue_out_of_backlog_wakes_the_assignee(board, company, agent, status):
    issue = factories.IssueFactory(company=company, status="backlog", assignee_agent=agent)

    response = patch(board, issue.pk, {"status": status})

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == status
    assert_woken_once(agent, issue.pk, "issue_ready", "assignment")


def test_assigning_and_leaving_backlog_in_one_patch_wakes_the_assignee_once(board, company, agent):
    issue = factories.IssueFactory(company=company, status="backlog")

    response = patch(board, issue.pk, {"assigneeAgentId": agent.pk, "status": "todo"})

    assert response.status_code == 200, response.json()
    assert len(wakeups(agent)) == 1
    assert wakeups(agent)[0].run.issue_id == issue.pk


def test_moving_an_unassigned_issue_out_of_backlog_wakes_nobody(board, company, agent):
    issue = factories.IssueFactory(company=company, status="backlog")

    response = patch(board, issue.pk, {"status": "todo"})

    assert response.status_code == 200, response.json()
    assert all_wakeups() == []


# -- comments --------------------------------------------------------------------------------------


def test_a_board_comment_wakes_the_assignee_with_the_comment_id(board, company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = comment(board, issue.pk, "How is it going?")

    assert response.status_code == 201, response.json()
    comment_id = stored(response.json()["id"], Comment)
    assert_woken_once(agent, issue.pk, "issue_commented", "automation", commentId=comment_id)


def test_another_agents_comment_wakes_the_assignee(company, agent, peer):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = comment(key_of(peer), issue.pk, "I need this for my task.")

    assert response.status_code == 201, response.json()
    comment_id = stored(response.json()["id"], Comment)
    assert_woken_once(agent, issue.pk, "issue_commented", "automation", commentId=comment_id)
    [wake] = wakeups(agent)
    assert (wake.requested_by_type, wake.requested_by_id) == ("agent", peer.pk)


@pytest.mark.parametrize("status", ["backlog", "blocked", "in_review"])
def test_a_comment_on_an_open_issue_in_any_status_wakes_the_assignee(board, company, agent, status):
    issue = factories.IssueFactory(company=company, status=status, assignee_agent=agent)

    response = comment(board, issue.pk, "Ping")

    assert response.status_code == 201, response.json()
    assert [wake.reason for wake in wakeups(agent)] == ["issue_commented"]


def test_the_assignees_own_comment_does_not_wake_it(company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = comment(key_of(agent), issue.pk, "Progress: halfway there.")

    assert response.status_code == 201, response.json()
    assert all_wakeups() == []


@pytest.mark.parametrize("status", ["done", "cancelled", "failed"])
def test_a_comment_on_a_finished_issue_does_not_wake_the_assignee(board, company, agent, status):
    issue = factories.IssueFactory(company=company, status=status, assignee_agent=agent)

    response = comment(board, issue.pk, "Thanks, all good.")

    assert response.status_code == 201, response.json()
    assert all_wakeups() == []


def test_a_comment_on_an_unassigned_issue_wakes_nobody(board, company, agent):
    issue = factories.IssueFactory(company=company, status="todo")

    response = comment(board, issue.pk, "Who takes this?")

    assert response.status_code == 201, response.json()
    assert all_wakeups() == []


def test_a_comment_sent_with_a_patch_wakes_the_assignee(board, company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = patch(board, issue.pk, {"priority": "high", "comment": "Bumped, please hurry."})

    assert response.status_code == 200, response.json()
    [wake] = wakeups(agent)
    assert (wake.reason, wake.source) == ("issue_commented", "automation")
    assert wake.run.context["commentId"] == issue.comments.get().pk


# -- the board's checkout on an agent's behalf -----------------------------------------------------


def test_board_checkout_for_an_agent_wakes_it(board, board_user, company, agent):
    issue = factories.IssueFactory(company=company, status="todo")

    response = board.post(f"/api/issues/{issue.pk}/checkout", {"agentId": agent.pk}, format="json")

    assert response.status_code == 200, response.json()
    assert_woken_once(agent, issue.pk, "issue_checked_out", "assignment")
    [wake] = wakeups(agent)
    assert (wake.requested_by_type, wake.requested_by_id) == ("user", board_user.pk)


def test_an_agents_own_checkout_wakes_nobody(company, agent):
    issue = factories.IssueFactory(company=company, status="todo")
    run = factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )

    response = key_of(agent, run).post(f"/api/issues/{issue.pk}/checkout", {}, format="json")

    assert response.status_code == 200, response.json()
    assert all_wakeups() == []


# -- the board's reopen ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["done", "cancelled", "failed"])
def test_board_reopen_wakes_the_assignee(board, company, agent, status):
    issue = factories.IssueFactory(company=company, status=status, assignee_agent=agent)

    response = board.post(f"/api/issues/{issue.pk}/reopen")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "todo"
    assert_woken_once(agent, issue.pk, "issue_reopened", "automation")


def test_board_reopen_by_patch_wakes_the_assignee(board, company, agent):
    issue = factories.IssueFactory(company=company, status="done", assignee_agent=agent)

    response = patch(board, issue.pk, {"reopen": True})

    assert response.status_code == 200, response.json()
    assert_woken_once(agent, issue.pk, "issue_reopened", "automation")


def test_board_reopen_of_an_unassigned_issue_wakes_nobody(board, company, agent):
    issue = factories.IssueFactory(company=company, status="done")

    response = board.post(f"/api/issues/{issue.pk}/reopen")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "backlog"
    assert all_wakeups() == []


def test_reopening_with_a_comment_wakes_the_assignee_once_pointing_at_the_comment(
    board, company, agent
):
    """The agent must read why it was brought back: its run names the comment."""
    issue = factories.IssueFactory(company=company, status="done", assignee_agent=agent)

    response = comment(board, issue.pk, "Not fixed after all, see the logs.", reopen=True)

    assert response.status_code == 201, response.json()
    [wake] = wakeups(agent)
    assert wake.run.issue_id == issue.pk
    assert wake.run.context.get("commentId") == stored(response.json()["id"], Comment)


# -- one wake per agent per request ----------------------------------------------------------------


def test_assigning_and_mentioning_the_same_agent_in_one_patch_wakes_it_once(board, company, agent):
    issue = factories.IssueFactory(company=company, status="todo")

    response = patch(
        board, issue.pk, {"assigneeAgentId": agent.pk, "comment": "@Builder this one is yours"}
    )

    assert response.status_code == 200, response.json()
    [wake] = wakeups(agent)
    assert (wake.reason, wake.coalesced, wake.run.issue_id) == ("issue_assigned", False, issue.pk)
    assert HeartbeatRun.objects.filter(agent=agent).count() == 1


def test_assigning_with_a_comment_wakes_the_new_assignee_once(board, company, agent):
    issue = factories.IssueFactory(company=company, status="todo")

    response = patch(board, issue.pk, {"assigneeAgentId": agent.pk, "comment": "Over to you."})

    assert response.status_code == 200, response.json()
    assert [wake.reason for wake in wakeups(agent)] == ["issue_assigned"]


def test_a_patch_waking_two_agents_wakes_each_once(board, company, agent, peer):
    issue = factories.IssueFactory(company=company, status="backlog")

    response = patch(
        board,
        issue.pk,
        {"assigneeAgentId": agent.pk, "status": "todo", "comment": "@Rival @Builder @rival sync"},
    )

    assert response.status_code == 200, response.json()
    assert sorted(all_wakeups()) == [
        ("Builder", "issue_assigned"),
        ("Rival", "issue_comment_mentioned"),
    ]


# -- paused agents ---------------------------------------------------------------------------------


def test_assigning_a_paused_agent_does_not_wake_it(board, company, paused):
    response = create_issue(board, company, assigneeAgentId=paused.pk)

    assert response.status_code == 201, response.json()
    assert response.json()["assigneeAgentId"] == wire(paused)
    assert all_wakeups() == []
    assert not HeartbeatRun.objects.exists()


def test_commenting_on_a_paused_agents_issue_does_not_wake_it(board, company, paused):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=paused)

    response = comment(board, issue.pk, "Still there?")

    assert response.status_code == 201, response.json()
    assert all_wakeups() == []


def test_moving_a_paused_agents_issue_out_of_backlog_does_not_wake_it(board, company, paused):
    issue = factories.IssueFactory(company=company, status="backlog", assignee_agent=paused)

    response = patch(board, issue.pk, {"status": "todo"})

    assert response.status_code == 200, response.json()
    assert all_wakeups() == []


def test_reopening_a_paused_agents_issue_does_not_wake_it(board, company, paused):
    issue = factories.IssueFactory(company=company, status="done", assignee_agent=paused)

    response = board.post(f"/api/issues/{issue.pk}/reopen")

    assert response.status_code == 200, response.json()
    assert all_wakeups() == []


def test_a_paused_agent_is_woken_again_once_resumed(board, company, paused):
    assert board.post(f"/api/agents/{paused.pk}/resume").status_code == 200

    response = create_issue(board, company, assigneeAgentId=paused.pk)

    assert response.status_code == 201, response.json()
    assert_woken_once(paused, stored(response.json()["id"], Issue), "issue_assigned", "assignment")


# -- coalescing into a queued run ------------------------------------------------------------------


def test_a_wake_for_an_issue_whose_run_is_still_queued_merges_into_that_run(board, company, agent):
    created = create_issue(board, company, assigneeAgentId=agent.pk)
    issue_id = created.json()["id"]

    response = comment(board, issue_id, "One more thing")

    assert response.status_code == 201, response.json()
    first, second = wakeups(agent)
    assert (first.reason, first.coalesced) == ("issue_assigned", False)
    assert (second.reason, second.coalesced) == ("issue_commented", True)
    assert second.run_id == first.run_id
    run = HeartbeatRun.objects.get(agent=agent)
    assert (run.status, run.issue_id, run.wake_reason) == (
        "queued",
        stored(issue_id, Issue),
        "issue_commented",
    )
    assert run.context["commentId"] == stored(response.json()["id"], Comment)


def test_several_comments_merge_into_one_queued_run_that_names_the_latest(board, company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    ids = [comment(board, issue.pk, f"Note {n}").json()["id"] for n in range(3)]

    assert [wake.coalesced for wake in wakeups(agent)] == [False, True, True]
    assert len({wake.run_id for wake in wakeups(agent)}) == 1
    assert HeartbeatRun.objects.get(agent=agent).context["commentId"] == stored(ids[-1], Comment)


def test_a_wake_after_the_run_started_gets_a_new_run(board, company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)
    comment(board, issue.pk, "First")
    [first] = wakeups(agent)
    started = key_of(agent).post(f"/api/heartbeat-runs/{first.run_id}/start")
    assert started.status_code == 200, started.json()

    response = comment(board, issue.pk, "Second")

    assert response.status_code == 201, response.json()
    _, second = wakeups(agent)
    assert second.coalesced is False
    assert second.run_id != first.run_id
    assert (second.run.status, second.run.issue_id) == ("queued", issue.pk)


def test_wakes_for_different_issues_get_separate_runs(board, company, agent):
    first = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)
    second = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    comment(board, first.pk, "About the first")
    comment(board, second.pk, "About the second")

    runs = HeartbeatRun.objects.filter(agent=agent)
    assert sorted(run.issue_id for run in runs) == sorted([first.pk, second.pk])
    assert [wake.coalesced for wake in wakeups(agent)] == [False, False]


def test_a_wake_does_not_merge_into_another_agents_queued_run(board, company, agent, peer):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)
    comment(board, issue.pk, "For the assignee")

    response = patch(board, issue.pk, {"assigneeAgentId": peer.pk})

    assert response.status_code == 200, response.json()
    [wake] = wakeups(peer)
    assert wake.coalesced is False
    assert wake.run.agent_id == peer.pk
