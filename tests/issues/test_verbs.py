"""The lifecycle verbs `/v1` calls by name (DESIGN §8), and PATCH reaching the same steps.

assign: a queued issue gets its agent (backlog → todo), who is woken. reassign: assigned or
running work goes to another agent; the live run holding it ends with exit reason `reassigned`.
cancel: any open issue → cancelled, a live run holding it is stopped. review: accept → done,
request_changes → back to the same agent with the comment, `changes_requested`.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from agents.authentication import agent_actor
from agents.models import HeartbeatRun, WakeupRequest
from companies.authentication import board_actor
from companies.models import ActivityEvent
from issues import services
from issues.models import Comment
from paperclip.errors import (
    Conflict,
    InvalidTransition,
    NotAllowed,
    NotAuthenticated,
    Unprocessable,
)
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor(board_user):
    return board_actor(board_user)


@pytest.fixture
def peer(company):
    return factories.AgentFactory(company=company, name="Peer")


def running(company, agent):
    """An in-progress issue whose lock a live run of `agent` holds."""
    run = factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )
    issue = factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=agent, checkout_run=run
    )
    return issue, run


def woken(agent) -> list[str]:
    return list(WakeupRequest.objects.filter(agent=agent).values_list("reason", flat=True))


def test_assign_moves_a_backlog_issue_to_todo_and_wakes_the_agent(actor, company, agent):
    issue = factories.IssueFactory(company=company, status="backlog")

    issue = services.issue_assign(actor=actor, issue=issue, agent=agent)

    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id) == ("todo", agent.pk)
    assert woken(agent) == ["issue_assigned"]
    row = ActivityEvent.objects.get(action="issue.assigned")
    assert row.details["changes"]["status"] == {"from": "backlog", "to": "todo"}


def test_assign_of_work_that_already_has_an_agent_is_a_refused_transition(
    actor, company, agent, peer
):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    with pytest.raises(InvalidTransition) as refused:
        services.issue_assign(actor=actor, issue=issue, agent=peer)

    assert refused.value.details == {
        "from": "todo",
        "to": "todo",
        "allowed": [],
        "action": "assign",
    }
    issue.refresh_from_db()
    assert issue.assignee_agent_id == agent.pk


def test_reassign_of_running_work_ends_the_run_and_wakes_the_new_agent(actor, company, agent, peer):
    issue, run = running(company, agent)

    issue = services.issue_reassign(actor=actor, issue=issue, agent=peer, reason="rebalance")

    issue.refresh_from_db()
    run.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id, issue.checkout_run_id) == ("todo", peer.pk, None)
    assert issue.status_reason == "reassigned"
    assert (run.status, run.exit_reason, run.cancel_requested_at is not None) == (
        "cancelled",
        "reassigned",
        True,
    )
    assert woken(peer) == ["issue_reassigned"]
    row = ActivityEvent.objects.get(action="issue.reassigned")
    assert (row.details["fromAgentId"], row.details["toAgentId"], row.details["endedRunId"]) == (
        agent.pk,
        peer.pk,
        run.pk,
    )
    assert row.details["reason"] == "rebalance"


def test_reassign_to_the_same_agent_is_409(actor, company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    with pytest.raises(Conflict) as refused:
        services.issue_reassign(actor=actor, issue=issue, agent=agent)

    assert refused.value.code == "already_assigned"


def test_reassign_of_a_queued_issue_is_a_refused_transition(actor, company, peer):
    issue = factories.IssueFactory(company=company, status="backlog")

    with pytest.raises(InvalidTransition):
        services.issue_reassign(actor=actor, issue=issue, agent=peer)


def test_cancel_stops_the_live_run_and_keeps_the_reason(actor, company, agent):
    issue, run = running(company, agent)

    services.issue_cancel(actor=actor, issue=issue, reason="Duplicate of ACM-1")

    issue.refresh_from_db()
    run.refresh_from_db()
    assert (issue.status, issue.checkout_run_id) == ("cancelled", None)
    assert issue.cancelled_at is not None
    assert (run.status, run.exit_reason) == ("cancelled", "cancelled")
    row = ActivityEvent.objects.get(action="issue.cancelled")
    assert row.details["reason"] == "Duplicate of ACM-1"


def test_the_run_a_cancel_stops_leaves_its_own_activity_row(actor, company, agent):
    """Every mutation leaves an activity row: the run's end too, as the board's cancel does."""
    issue, run = running(company, agent)

    services.issue_cancel(actor=actor, issue=issue)

    row = ActivityEvent.objects.get(action="run.cancelled")
    assert (row.entity_id, row.details["status"]) == (
        run.pk,
        {"from": "running", "to": "cancelled"},
    )


def test_cancel_of_a_finished_issue_is_refused_as_frozen(actor, company):
    issue = factories.IssueFactory(company=company, status="done")

    with pytest.raises(Unprocessable) as refused:
        services.issue_cancel(actor=actor, issue=issue)

    assert refused.value.code == "issue_frozen"


def test_review_accept_finishes_the_issue(actor, company, agent):
    issue = factories.IssueFactory(company=company, status="in_review", assignee_agent=agent)

    services.issue_review(actor=actor, issue=issue, verdict="accept")

    issue.refresh_from_db()
    assert (issue.status, issue.completed_at is not None) == ("done", True)


def test_request_changes_sends_it_back_with_the_comment_and_wakes_the_agent(actor, company, agent):
    issue = factories.IssueFactory(company=company, status="in_review", assignee_agent=agent)

    services.issue_review(
        actor=actor, issue=issue, verdict="request_changes", comment="Add the tests"
    )

    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id, issue.status_reason) == (
        "todo",
        agent.pk,
        "changes_requested",
    )
    assert Comment.objects.get(issue=issue).body == "Add the tests"
    assert woken(agent) == ["issue_changes_requested"]


def test_the_assignee_cannot_review_its_own_work(company, agent):
    issue = factories.IssueFactory(company=company, status="in_review", assignee_agent=agent)

    with pytest.raises(NotAllowed):
        services.issue_review(actor=agent_actor(agent), issue=issue, verdict="accept")

    issue.refresh_from_db()
    assert issue.status == "in_review"


def test_review_of_an_issue_not_in_review_is_a_refused_transition(actor, company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    with pytest.raises(InvalidTransition) as refused:
        services.issue_review(actor=actor, issue=issue, verdict="accept")

    assert refused.value.details["action"] == "review"


def test_patch_to_cancelled_stops_the_live_run_like_the_cancel_verb(board, company, agent):
    issue, run = running(company, agent)

    response = board.patch(f"/api/issues/{issue.pk}", {"status": "cancelled"}, format="json")

    assert response.status_code == 200, response.json()
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == ("cancelled", "cancelled")
    assert response.json()["checkoutRunId"] is None


def as_run(agent, run):
    return agent_actor(agent, run_id=run.pk, run=run)


def test_the_assignee_reassigns_its_running_work_only_from_the_holding_run(company, agent, peer):
    issue, run = running(company, agent)
    other_run = factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )

    with pytest.raises(NotAuthenticated):
        services.issue_reassign(actor=agent_actor(agent), issue=issue, agent=peer)
    with pytest.raises(Conflict) as refused:
        services.issue_reassign(actor=as_run(agent, other_run), issue=issue, agent=peer)

    assert refused.value.code == "run_ownership_conflict"
    run.refresh_from_db()
    issue.refresh_from_db()
    assert (run.status, issue.assignee_agent_id) == ("running", agent.pk)


def test_the_holder_hands_its_work_over_from_its_own_run_and_keeps_running(company, agent, peer):
    issue, run = running(company, agent)

    services.issue_reassign(actor=as_run(agent, run), issue=issue, agent=peer)

    run.refresh_from_db()
    issue.refresh_from_db()
    assert (issue.assignee_agent_id, issue.status) == (peer.pk, "todo")
    assert run.status == "running"  # its own run goes on with its other work


def test_cancelling_one_issue_of_a_run_holding_two_leaves_the_run_and_the_other_issue(
    actor, company, agent
):
    first, run = running(company, agent)
    second = factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=agent, checkout_run=run
    )

    response_issue = services.issue_cancel(actor=actor, issue=first)

    run.refresh_from_db()
    second.refresh_from_db()
    assert response_issue.status == "cancelled"
    assert run.status == "running"
    assert (second.status, second.checkout_run_id) == ("in_progress", run.pk)
    services.issue_update(actor=as_run(agent, run), issue=second, changes={"title": "Still mine"})


def test_the_holder_may_patch_its_issue_to_another_assignee(company, agent, peer):
    issue, run = running(company, agent)

    services.issue_update(
        actor=as_run(agent, run),
        issue=issue,
        changes={"assignee_agent": peer, "status": "todo"},
    )

    issue.refresh_from_db()
    assert (issue.assignee_agent_id, issue.status, issue.checkout_run_id) == (peer.pk, "todo", None)
