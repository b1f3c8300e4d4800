"""The `/v1` agent plane (DESIGN §8): an agent claims a task for a new run, heartbeats, reports
progress and ends the attempt (complete, fail, handoff). A run that is no longer the task's
current run (reassigned, cancelled, its lease expired) gets 409 `lease_lost` on every verb."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from agents.models import HeartbeatRun
from companies.authentication import board_actor
from companies.models import ActivityEvent
from issues.models import Issue, Status
from issues.services.verbs import issue_cancel, issue_reassign
from tests import factories
from tests.conftest import client_for, iso

pytestmark = pytest.mark.django_db

VERBS = {
    "heartbeat": {},
    "progress": {"checkpoint": {"step": 9}},
    "complete": {"summary": "late"},
    "fail": {"reason": "late"},
    "handoff": {"reason": "late"},
}


def runs_url(company, issue) -> str:
    return f"/v1/companies/{company.pk}/issues/{issue.pk}/runs"


def claim(client, company, issue, body=None):
    return client.post(runs_url(company, issue), body or {}, format="json")


def verb(client, company, issue, run_id: str, name: str, body=None):
    return client.post(f"{runs_url(company, issue)}/{run_id}/{name}", body or {}, format="json")


def task(client, company, issue) -> dict:
    return client.get(f"/v1/companies/{company.pk}/issues/{issue.pk}").json()["data"]


def actions(issue) -> list[str]:
    return list(
        ActivityEvent.objects.filter(issue_id=issue.pk).order_by("created_at", "id")
        .values_list("action", flat=True)
    )  # fmt: skip


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


@pytest.fixture
def assigned(company, agent):
    return factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)


@pytest.fixture
def claimed(agent_client, company, assigned):
    """The assigned task, claimed by its agent: answers the run id."""
    response = claim(agent_client, company, assigned)
    assert response.status_code == 201, response.json()
    return response.json()["data"]["id"]


@pytest.fixture
def peer(company):
    return factories.AgentFactory(company=company, name="Peer")


@pytest.fixture
def peer_client(peer):
    return client_for(factories.AgentApiKeyFactory(agent=peer).token)


# -- claim ------------------------------------------------------------------------------------


def test_the_assigned_agent_claims_its_task_a_running_run_with_a_lease_and_fencing_token(
    agent_client, board, company, agent, assigned
):
    response = claim(agent_client, company, assigned)

    assert response.status_code == 201
    run = HeartbeatRun.objects.get(pk=response.json()["data"]["id"])
    assert response.json()["data"] == {
        "id": run.pk,
        "taskId": assigned.pk,
        "agentId": agent.pk,
        "status": "running",
        "startedAt": iso(run.started_at),
        "endedAt": None,
        "leaseExpiresAt": iso(run.lease_expires_at),
        "fencingToken": 1,
        "leaseHistory": [
            {
                "acquiredAt": iso(run.started_at),
                "renewals": 0,
                "lastRenewedAt": None,
                "expiresAt": iso(run.lease_expires_at),
                "releasedAt": None,
                "releaseReason": None,
            }
        ],
        "checkpoint": None,
        "cost": {"usd": 0.0, "inputTokens": 0, "outputTokens": 0},
        "exitReason": None,
        "exitDetails": {},
        "workspaceUrl": None,
    }
    assert run.lease_expires_at > timezone.now() + timedelta(seconds=290)
    shown = task(board, company, assigned)
    assert (shown["status"], shown["currentRunId"]) == ("running", run.pk)
    assigned.refresh_from_db()
    assert (assigned.status, assigned.checkout_run_id, assigned.claim_count) == (
        Status.IN_PROGRESS,
        run.pk,
        1,
    )
    started = ActivityEvent.objects.get(issue_id=assigned.pk)
    assert started.action == "issue.started"
    assert started.details["runId"] == run.pk
    assert started.details["fencingToken"] == 1


def test_a_queued_task_nobody_is_assigned_is_claimed_by_any_agent_which_becomes_its_assignee(
    peer_client, board, company, peer
):
    queued = factories.IssueFactory(company=company, status=Status.BACKLOG)

    response = claim(peer_client, company, queued)

    assert response.status_code == 201
    shown = task(board, company, queued)
    assert (shown["status"], shown["assignedAgentId"]) == ("running", peer.pk)


def test_another_agents_task_is_403_and_stays_as_it_was(peer_client, company, assigned):
    response = claim(peer_client, company, assigned)

    assert error(response) == (403, "forbidden")
    assigned.refresh_from_db()
    assert (assigned.status, assigned.claim_count) == (Status.TODO, 0)
    assert not HeartbeatRun.objects.exists()


def test_the_board_cannot_claim_a_task(board, company, assigned):
    assert error(claim(board, company, assigned)) == (403, "forbidden")


def test_a_claim_while_a_live_run_holds_the_task_is_409_lease_conflict_naming_it(
    agent_client, company, agent, assigned, claimed
):
    response = claim(agent_client, company, assigned)

    assert error(response) == (409, "lease_conflict")
    details = response.json()["error"]["details"]
    assert (details["taskId"], details["runId"], details["agentId"]) == (
        assigned.pk,
        claimed,
        agent.pk,
    )
    assert HeartbeatRun.objects.count() == 1


def test_a_task_with_an_unfinished_dependency_is_409_dependencies_pending(
    agent_client, company, assigned
):
    done = factories.IssueFactory(company=company, status=Status.DONE)
    open_ = factories.IssueFactory(company=company, status=Status.TODO)
    assigned.dependencies.set([done, open_])

    response = claim(agent_client, company, assigned)

    assert error(response) == (409, "dependencies_pending")
    assert response.json()["error"]["details"]["pendingDependencies"] == [open_.pk]
    assert not HeartbeatRun.objects.exists()
    Issue.objects.filter(pk=open_.pk).update(status=Status.DONE)  # finished meanwhile
    assert claim(agent_client, company, assigned).status_code == 201


def finish(client, run_id: str, usage: dict):
    """The run ends through `/api`, reporting what it cost (DESIGN §10): the task keeps its
    stale lock, for the next claim to heal."""
    response = client.post(
        f"/api/heartbeat-runs/{run_id}/finish", {"status": "failed", "usage": usage}, format="json"
    )
    assert response.status_code == 200, response.json()


def test_a_spent_budget_is_409_budget_exhausted(agent_client, board, company, assigned):
    assigned.budget_usd = Decimal("1")
    assigned.save()
    first = claim(agent_client, company, assigned).json()["data"]["id"]
    finish(agent_client, first, {"costUsd": 3, "inputTokens": 900, "outputTokens": 100})

    response = claim(agent_client, company, assigned)

    assert error(response) == (409, "budget_exhausted")
    assert response.json()["error"]["details"] == {
        "taskId": assigned.pk,
        "perTaskUsd": 1.0,
        "spentUsd": 3.0,
    }
    assert task(board, company, assigned)["budget"] == {"perTaskUsd": 1.0, "spent": {"usd": 3.0}}
    assert HeartbeatRun.objects.claims_of(assigned.pk).count() == 1
    Issue.objects.filter(pk=assigned.pk).update(budget_usd=Decimal("5"))  # the board raised it
    assert claim(agent_client, company, assigned).status_code == 201


def test_the_budget_counts_every_claimed_run_and_is_spent_when_reached_exactly(
    agent_client, board, company, assigned
):
    assigned.budget_usd = Decimal("1")
    assigned.save()
    first = claim(agent_client, company, assigned).json()["data"]["id"]
    finish(agent_client, first, {"costCents": 30})

    second = claim(agent_client, company, assigned)  # 0.30 spent of 1.00: under budget

    assert second.status_code == 201
    finish(agent_client, second.json()["data"]["id"], {"costUsd": 0.7})
    assert task(board, company, assigned)["budget"]["spent"] == {"usd": 1.0}
    assert error(claim(agent_client, company, assigned)) == (409, "budget_exhausted")


def test_a_zero_budget_is_spent_before_any_run(agent_client, company, assigned):
    assigned.budget_usd = Decimal("0")
    assigned.save()

    response = claim(agent_client, company, assigned)

    assert error(response) == (409, "budget_exhausted")
    assert response.json()["error"]["details"]["spentUsd"] == 0.0
    assert not HeartbeatRun.objects.exists()


def test_a_task_without_a_budget_is_claimed_whatever_its_runs_cost(agent_client, company, assigned):
    first = claim(agent_client, company, assigned).json()["data"]["id"]
    finish(agent_client, first, {"costUsd": 1000})

    assert claim(agent_client, company, assigned).status_code == 201


@pytest.mark.parametrize(
    ("status", "state", "allowed"),
    [
        (Status.IN_REVIEW, "review", ["reassign", "review", "cancel"]),
        (Status.BLOCKED, "handoff", ["reassign", "cancel"]),
        (Status.DONE, "done", []),
        (Status.CANCELLED, "cancelled", []),
    ],
)
def test_a_task_in_review_handoff_or_finished_is_not_claimable(
    agent_client, company, agent, status, state, allowed
):
    issue = factories.IssueFactory(company=company, status=status, assignee_agent=agent)

    response = claim(agent_client, company, issue)

    assert error(response) == (409, "invalid_transition")
    assert response.json()["error"]["details"] == {
        "status": state,
        "action": "claim",
        "allowedActions": allowed,
    }
    assert not HeartbeatRun.objects.exists()


def test_a_run_token_claims_too(board, company, agent, assigned):
    woken = board.post(f"/api/agents/{agent.pk}/wakeup", {}, format="json").json()

    response = claim(client_for(woken["runToken"]), company, assigned)

    assert response.status_code == 201
    assert response.json()["data"]["agentId"] == agent.pk


# -- the loop ---------------------------------------------------------------------------------


def test_claim_heartbeat_progress_complete_puts_the_task_in_review_with_the_last_checkpoint(
    agent_client, board, company, assigned, claimed
):
    run = HeartbeatRun.objects.get(pk=claimed)
    HeartbeatRun.objects.filter(pk=run.pk).update(
        lease_expires_at=timezone.now() + timedelta(seconds=30)
    )

    beat = verb(agent_client, company, assigned, claimed, "heartbeat")

    assert beat.status_code == 200
    run.refresh_from_db()
    assert beat.json()["data"] == {
        "leaseExpiresAt": iso(run.lease_expires_at),
        "cancelRequested": False,
    }
    assert run.lease_expires_at > timezone.now() + timedelta(seconds=290)
    assert (run.lease_renewals, run.lease_renewed_at is not None) == (1, True)

    first = verb(agent_client, company, assigned, claimed, "progress", {"checkpoint": {"step": 1}})
    second = verb(
        agent_client,
        company,
        assigned,
        claimed,
        "progress",
        {"checkpoint": {"step": 2}, "message": "drafted"},
    )
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["data"]["checkpoint"] == {"step": 2}

    done = verb(
        agent_client,
        company,
        assigned,
        claimed,
        "complete",
        {"checkpoint": {"step": 3}, "summary": "Hero rewritten"},
    )

    assert done.status_code == 200
    body = done.json()["data"]
    assert (body["status"], body["exitReason"], body["exitDetails"], body["checkpoint"]) == (
        "succeeded",
        "completed",
        {"summary": "Hero rewritten"},
        {"step": 3},
    )
    [lease] = body["leaseHistory"]
    assert (lease["renewals"], lease["releaseReason"]) == (3, "completed")
    assert lease["releasedAt"] is not None
    shown = task(board, company, assigned)
    assert (shown["status"], shown["currentRunId"], shown["statusReason"]) == (
        "review",
        None,
        None,
    )
    assert actions(assigned) == [
        "issue.started",
        "issue.progress",
        "issue.progress",
        "issue.review",
    ]
    progress = ActivityEvent.objects.filter(action="issue.progress").order_by("-created_at")[0]
    assert progress.details["message"] == "drafted"


def test_fail_fails_the_task_and_the_run_with_the_reason(
    agent_client, board, company, assigned, claimed
):
    response = verb(
        agent_client,
        company,
        assigned,
        claimed,
        "fail",
        {"reason": "tests never pass", "details": {"attempts": 3}},
    )

    assert response.status_code == 200
    body = response.json()["data"]
    assert (body["status"], body["exitReason"], body["exitDetails"]) == (
        "failed",
        "failed",
        {"reason": "tests never pass", "details": {"attempts": 3}},
    )
    assert task(board, company, assigned)["status"] == "failed"
    assert actions(assigned)[-1] == "issue.failed"


def test_handoff_leaves_the_task_for_a_human_and_ends_the_run(
    agent_client, board, company, assigned, claimed
):
    response = verb(
        agent_client, company, assigned, claimed, "handoff", {"reason": "needs legal review"}
    )

    assert response.status_code == 200
    body = response.json()["data"]
    assert (body["exitReason"], body["exitDetails"], body["leaseHistory"][0]["releaseReason"]) == (
        "handoff",
        {"reason": "needs legal review"},
        "handoff",
    )
    assert HeartbeatRun.objects.get(pk=claimed).is_terminal
    assert task(board, company, assigned)["status"] == "handoff"
    assert actions(assigned)[-1] == "issue.handoff"


# -- lease_lost: a stale worker never writes --------------------------------------------------


def refused_everywhere(client, company, issue, run_id) -> None:
    """Every verb answers 409 lease_lost, and none wrote anything."""
    before = (actions(issue), HeartbeatRun.objects.get(pk=run_id).checkpoint)
    for name, body in VERBS.items():
        response = verb(client, company, issue, run_id, name, body)
        assert error(response) == (409, "lease_lost"), (name, response.json())
        assert response.json()["error"]["details"]["runId"] == run_id
    assert (actions(issue), HeartbeatRun.objects.get(pk=run_id).checkpoint) == before


def test_after_a_reassign_the_old_run_gets_lease_lost(
    agent_client, board_user, company, assigned, claimed, peer
):
    issue_reassign(actor=board_actor(board_user), issue=assigned, agent=peer, reason="better fit")

    refused_everywhere(agent_client, company, assigned, claimed)
    run = HeartbeatRun.objects.get(pk=claimed)
    assert (run.status, run.exit_reason) == (HeartbeatRun.Status.CANCELLED, "reassigned")


def test_after_a_cancel_the_run_gets_lease_lost(
    agent_client, board, board_user, company, assigned, claimed
):
    issue_cancel(actor=board_actor(board_user), issue=assigned, reason="no longer needed")

    refused_everywhere(agent_client, company, assigned, claimed)
    assert task(board, company, assigned)["status"] == "cancelled"


def test_after_the_board_moves_the_task_by_patch_the_run_gets_lease_lost(
    agent_client, board, company, assigned, claimed
):
    response = board.patch(f"/api/issues/{assigned.pk}", {"status": "todo"}, format="json")
    assert response.status_code == 200, response.json()

    refused_everywhere(agent_client, company, assigned, claimed)


def test_a_stale_worker_sending_its_dead_run_id_still_gets_lease_lost(
    agent, board_user, company, assigned, claimed, peer
):
    issue_reassign(actor=board_actor(board_user), issue=assigned, agent=peer)
    stale = client_for(factories.AgentApiKeyFactory(agent=agent).token, run_id=claimed)

    refused_everywhere(stale, company, assigned, claimed)


def expire(run_id: str) -> None:
    """The worker died: nobody renews its lease any more."""
    HeartbeatRun.objects.filter(pk=run_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_an_expired_lease_is_lost_and_healed_back_to_assigned_with_lease_expired(
    agent_client, board, company, assigned, claimed
):
    expire(claimed)
    # Expired but not yet cleaned up: already not the current run.
    assert error(verb(agent_client, company, assigned, claimed, "heartbeat")) == (
        409,
        "lease_lost",
    )

    call_command("release_stale_locks", stdout=StringIO())

    shown = task(board, company, assigned)
    assert (shown["status"], shown["statusReason"], shown["currentRunId"]) == (
        "assigned",
        "lease_expired",
        None,
    )
    refused_everywhere(agent_client, company, assigned, claimed)
    old = agent_client.get(f"{runs_url(company, assigned)}/{claimed}").json()["data"]
    assert (old["status"], old["exitReason"], old["leaseHistory"][0]["releaseReason"]) == (
        "timed_out",
        "lease_expired",
        "lease_expired",
    )
    again = claim(agent_client, company, assigned)
    assert again.status_code == 201
    assert again.json()["data"]["fencingToken"] == 2
    assert task(board, company, assigned)["statusReason"] is None


def test_the_next_claim_heals_an_expired_lease_itself(agent_client, company, assigned, claimed):
    expire(claimed)

    again = claim(agent_client, company, assigned)

    assert again.status_code == 201
    assert again.json()["data"]["fencingToken"] == 2
    old = HeartbeatRun.objects.get(pk=claimed)
    assert (old.status, old.exit_reason) == (HeartbeatRun.Status.TIMED_OUT, "lease_expired")
    assert "issue.stale_lock_released" in actions(assigned)
    refused_everywhere(agent_client, company, assigned, claimed)


def test_another_agent_cannot_drive_a_run_403(peer_client, company, assigned, claimed):
    for name, body in VERBS.items():
        assert error(verb(peer_client, company, assigned, claimed, name, body)) == (
            403,
            "forbidden",
        )


def test_the_board_cannot_drive_a_run_403(board, company, assigned, claimed):
    assert error(verb(board, company, assigned, claimed, "heartbeat")) == (403, "forbidden")


# -- input and tenancy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "body", "fields"),
    [
        ("progress", {}, ["checkpoint"]),
        ("progress", {"checkpoint": [1, 2]}, ["checkpoint"]),
        ("progress", {"checkpoint": {}, "note": "x"}, ["note"]),
        ("complete", {"checkpoint": "done"}, ["checkpoint"]),
        ("fail", {}, ["reason"]),
        ("fail", {"reason": "x", "details": "y"}, ["details"]),
        ("handoff", {"reason": ""}, ["reason"]),
        ("heartbeat", {"leaseSeconds": 60}, ["leaseSeconds"]),
    ],
)
def test_bad_input_is_400_naming_each_field(
    agent_client, company, assigned, claimed, name, body, fields
):
    response = verb(agent_client, company, assigned, claimed, name, body)

    assert error(response) == (400, "validation_error")
    assert sorted(response.json()["error"]["details"]) == fields
    assert HeartbeatRun.objects.get(pk=claimed).status == HeartbeatRun.Status.RUNNING


def test_a_claim_refuses_unknown_fields(agent_client, company, assigned):
    response = claim(agent_client, company, assigned, {"agentId": "agt_x"})

    assert error(response) == (400, "validation_error")
    assert response.json()["error"]["details"] == {"agentId": ["Unknown field."]}
    assert not HeartbeatRun.objects.exists()


def test_another_companys_task_and_run_are_404(
    other_client, other_board, other_company, company, assigned, claimed
):
    for client in (other_client, other_board):
        assert error(claim(client, company, assigned)) == (404, "not_found")
        assert error(claim(client, other_company, assigned)) == (404, "not_found")
        for name, body in VERBS.items():
            response = verb(client, other_company, assigned, claimed, name, body)
            assert error(response) == (404, "not_found")
    assert Issue.objects.get(pk=assigned.pk).claim_count == 1


def test_a_bad_or_foreign_run_id_is_404(agent_client, company, agent, assigned, claimed):
    elsewhere = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    wake = factories.HeartbeatRunFactory(agent=agent, issue_id=assigned.pk)

    for run_id in ("run_nope", "nope", wake.pk):
        assert error(verb(agent_client, company, assigned, run_id, "heartbeat")) == (
            404,
            "not_found",
        )
    assert error(verb(agent_client, company, elsewhere, claimed, "heartbeat")) == (
        404,
        "not_found",
    )


def test_a_finished_task_refuses_a_claim_by_its_state_before_its_dependencies(
    agent_client, company, agent
):
    blocker = factories.IssueFactory(company=company, status=Status.TODO)
    issue = factories.IssueFactory(company=company, status=Status.DONE, assignee_agent=agent)
    issue.dependencies.set([blocker])

    response = agent_client.post(
        f"/v1/companies/{company.pk}/issues/{issue.pk}/runs", {}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    assert response.json()["error"]["details"]["status"] == "done"
