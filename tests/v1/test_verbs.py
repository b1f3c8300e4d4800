"""`/v1` verbs (DESIGN §8): assign, cancel, reassign, review, from each of the eight task states.

Allowed → the new state; refused → 409 `invalid_transition` naming the state, the verb and what
the state allows. Reassign and cancel end the run holding the task and release its lease;
review is never the assignee's own; request_changes sends the work back with the comment.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from agents.models import HeartbeatRun, WakeupRequest
from companies.models import ActivityEvent
from issues.models import Comment, Issue, Status
from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

# The canonical status each task state is made from (all but queued with an agent).
STATES = {
    "queued": Status.BACKLOG,
    "assigned": Status.TODO,
    "running": Status.IN_PROGRESS,
    "review": Status.IN_REVIEW,
    "handoff": Status.BLOCKED,
    "done": Status.DONE,
    "failed": Status.FAILED,
    "cancelled": Status.CANCELLED,
}
# What each state accepts, as DESIGN §8 says (written out here, not read from the code).
ALLOWED = {
    "queued": ["assign", "cancel"],
    "assigned": ["reassign", "cancel"],
    "running": ["reassign", "cancel"],
    "review": ["reassign", "review", "cancel"],
    "handoff": ["reassign", "cancel"],
    "done": [],
    "failed": [],
    "cancelled": [],
}
# Where an allowed verb takes the task.
REACHES = {"assign": "assigned", "cancel": "cancelled", "reassign": "assigned", "review": "done"}


@pytest.fixture
def peer(company):
    return factories.AgentFactory(company=company, name="Peer")


def task_in(state: str, company, agent) -> Issue:
    """A task in `state`; a running one is held by a live run of `agent`."""
    run = None
    if state == "running":
        run = factories.HeartbeatRunFactory(
            agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
        )
    return factories.IssueFactory(
        company=company,
        status=STATES[state],
        assignee_agent=None if state == "queued" else agent,
        checkout_run=run,
    )


def verb_url(issue, verb: str, company=None) -> str:
    return f"/v1/companies/{(company or issue.company).pk}/issues/{issue.pk}/{verb}"


def body_for(verb: str, peer) -> dict:
    return {
        "assign": {"agentId": peer.pk},
        "cancel": {"reason": "not needed"},
        "reassign": {"toAgentId": peer.pk, "reason": "better fit"},
        "review": {"verdict": "accept", "comment": ""},
    }[verb]


def woken(agent) -> list[str]:
    return list(WakeupRequest.objects.filter(agent=agent).values_list("reason", flat=True))


MATRIX = [(verb, state) for verb in REACHES for state in STATES]


@pytest.mark.parametrize(("verb", "state"), MATRIX, ids=[f"{v}-from-{s}" for v, s in MATRIX])
def test_each_verb_from_each_state(board, company, agent, peer, verb, state):
    issue = task_in(state, company, agent)
    version = issue.version

    response = board.post(verb_url(issue, verb), body_for(verb, peer), format="json")

    issue.refresh_from_db()
    if verb in ALLOWED[state]:
        assert response.status_code == 200, response.json()
        task = response.json()["data"]
        assert task["status"] == REACHES[verb]
        assert (task["id"], task["currentRunId"]) == (issue.pk, None)
        assert response.headers["ETag"] == issue.etag
        if verb in ("assign", "reassign"):
            assert task["assignedAgentId"] == peer.pk
        assert ActivityEvent.objects.filter(issue_id=issue.pk).count() == 1
    else:
        assert response.status_code == 409, response.json()
        error = response.json()["error"]
        assert error == {
            "code": "invalid_transition",
            "message": f"Cannot {verb} a task that is {state}",
            "details": {"status": state, "action": verb, "allowedActions": ALLOWED[state]},
            "requestId": response.headers["X-Request-Id"],
        }
        assert (issue.status, issue.version) == (STATES[state], version)
        assert not ActivityEvent.objects.filter(issue_id=issue.pk).exists()


def test_reassign_of_running_work_ends_the_run_releases_its_lease_and_wakes_the_new_agent(
    board, company, agent, peer
):
    issue = task_in("running", company, agent)
    run = issue.checkout_run

    response = board.post(
        verb_url(issue, "reassign"), {"toAgentId": peer.pk, "reason": "better fit"}, format="json"
    )

    assert response.status_code == 200, response.json()
    task = response.json()["data"]
    assert (task["status"], task["statusReason"], task["assignedAgentId"]) == (
        "assigned",
        "reassigned",
        peer.pk,
    )
    run.refresh_from_db()
    assert (run.status, run.exit_reason, run.lease_release_reason) == (
        "cancelled",
        "reassigned",
        "reassigned",
    )
    assert run.lease_released_at is not None and run.cancel_requested_at is not None
    assert woken(peer) == ["issue_reassigned"]
    row = ActivityEvent.objects.get(issue_id=issue.pk)
    assert (row.action, row.details["reason"], row.details["endedRunId"]) == (
        "issue.reassigned",
        "better fit",
        run.pk,
    )


def test_cancel_of_running_work_stops_the_run_releases_its_lease_and_keeps_the_reason(
    board, company, agent
):
    issue = task_in("running", company, agent)
    run = issue.checkout_run

    response = board.post(verb_url(issue, "cancel"), {"reason": "no longer needed"}, format="json")

    assert response.status_code == 200, response.json()
    run.refresh_from_db()
    assert (run.status, run.exit_reason, run.lease_release_reason) == (
        "cancelled",
        "cancelled",
        "cancelled",
    )
    assert run.lease_released_at is not None
    row = ActivityEvent.objects.get(issue_id=issue.pk)
    assert (row.action, row.details["reason"]) == ("issue.cancelled", "no longer needed")


def test_assign_wakes_the_agent_and_clears_no_available_agent(board, company, peer):
    issue = factories.IssueFactory(
        company=company, status=Status.TODO, status_reason="no_available_agent"
    )

    response = board.post(verb_url(issue, "assign"), {"agentId": peer.pk}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["data"]["statusReason"] is None
    assert woken(peer) == ["issue_assigned"]


def test_reassign_to_the_agent_it_has_is_409(board, company, agent):
    issue = task_in("assigned", company, agent)

    response = board.post(verb_url(issue, "reassign"), {"toAgentId": agent.pk}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_assigned"


def test_request_changes_sends_the_work_back_with_the_comment_and_wakes_the_agent(
    board, company, agent
):
    issue = task_in("review", company, agent)

    response = board.post(
        verb_url(issue, "review"),
        {"verdict": "request_changes", "comment": "Add the tests"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    task = response.json()["data"]
    assert (task["status"], task["statusReason"], task["assignedAgentId"]) == (
        "assigned",
        "changes_requested",
        agent.pk,
    )
    assert Comment.objects.get(issue=issue).body == "Add the tests"
    assert "issue_changes_requested" in woken(agent)


def test_the_assignee_never_reviews_its_own_work(company, agent, agent_client):
    issue = task_in("review", company, agent)

    response = agent_client.post(verb_url(issue, "review"), {"verdict": "accept"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    issue.refresh_from_db()
    assert issue.status == Status.IN_REVIEW


def test_a_board_user_never_reviews_work_assigned_to_them(board, board_user, company):
    issue = factories.IssueFactory(
        company=company, status=Status.IN_REVIEW, assignee_user=board_user
    )

    own = board.post(verb_url(issue, "review"), {"verdict": "accept"}, format="json")

    assert own.status_code == 403
    assert own.json()["error"]["code"] == "forbidden"
    issue.refresh_from_db()
    assert issue.status == Status.IN_REVIEW


def test_a_manager_of_the_assignee_reviews_and_another_agent_may_not(company, agent, peer):
    manager = factories.AgentFactory(company=company, name="Lead")
    agent.reports_to = manager
    agent.save()
    issue = task_in("review", company, agent)

    by_peer = client_for(factories.AgentApiKeyFactory(agent=peer).token).post(
        verb_url(issue, "review"), {"verdict": "accept"}, format="json"
    )
    by_manager = client_for(factories.AgentApiKeyFactory(agent=manager).token).post(
        verb_url(issue, "review"), {"verdict": "accept"}, format="json"
    )

    assert by_peer.status_code == 403
    assert by_manager.status_code == 200, by_manager.json()
    assert by_manager.json()["data"]["status"] == "done"


@pytest.mark.parametrize(
    ("verb", "body", "field"),
    [
        ("assign", {}, "agentId"),
        ("assign", {"agentId": "agt_nope"}, "agentId"),
        ("reassign", {"agentId": "x"}, "agentId"),
        ("review", {"verdict": "maybe"}, "verdict"),
        ("cancel", {"reason": "x", "force": True}, "force"),
    ],
)
def test_a_bad_verb_body_is_400_naming_the_field(board, company, agent, verb, body, field):
    issue = task_in("review", company, agent)

    response = board.post(verb_url(issue, verb), body, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    issue.refresh_from_db()
    assert issue.status == Status.IN_REVIEW


@pytest.mark.parametrize("verb", list(REACHES))
def test_another_companys_task_agent_or_company_is_404_or_names_nothing(
    board, other_board, company, other_company, agent, verb
):
    issue = task_in("review", company, agent)
    theirs = factories.IssueFactory(company=other_company)
    outsider = factories.AgentFactory(company=other_company)
    body = body_for(verb, agent)

    from_outside = other_board.post(verb_url(issue, verb), body, format="json")
    under_their_company = other_board.post(
        verb_url(issue, verb, company=other_company), body, format="json"
    )
    theirs_under_ours = board.post(verb_url(theirs, verb, company=company), body, format="json")
    missing = board.post(
        f"/v1/companies/{company.pk}/issues/iss_01m8rd9461psyv1mhrdaj30j6k/{verb}",
        body,
        format="json",
    )

    for response in (from_outside, under_their_company, theirs_under_ours, missing):
        assert response.status_code == 404, response.json()
        assert response.json()["error"]["code"] == "not_found"
    if verb in ("assign", "reassign"):
        key = "agentId" if verb == "assign" else "toAgentId"
        foreign = board.post(verb_url(issue, verb), {**body, key: outsider.pk}, format="json")
        assert foreign.status_code == 400
    issue.refresh_from_db()
    assert issue.status == Status.IN_REVIEW


@pytest.mark.parametrize(
    ("verdict", "action"),
    [("accept", "issue.done"), ("request_changes", "issue.changes_requested")],
)
def test_a_review_is_logged_as_what_it_decided(board, company, agent, verdict, action):
    issue = task_in("review", company, agent)

    board.post(verb_url(issue, "review"), {"verdict": verdict}, format="json")

    assert list(
        ActivityEvent.objects.filter(issue_id=issue.pk).values_list("action", flat=True)
    ) == [action]
