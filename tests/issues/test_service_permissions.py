"""Who may act is decided by the services, whoever calls them (DESIGN §4, STYLE "Where a rule
lives"): the API, the admin and the management commands all get these answers.

The personas: the board (a member with a writable seat), a read-only viewer, the worker (the
agent the issue is assigned to), its manager (the worker reports to it), a peer agent of the
same company, and an agent of another company. Each service is called directly with each
persona; a refusal is a domain error and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.utils import timezone

from agents import services as agent_services
from agents.authentication import agent_actor
from agents.models import HeartbeatRun
from companies.authentication import board_actor
from companies.models import ActivityEvent, Membership
from issues import services
from issues.models import Approval, Issue
from paperclip.errors import NotAllowed
from tests import factories

pytestmark = pytest.mark.django_db

PERSONAS = ["board", "viewer", "worker", "manager", "peer", "outsider"]


@pytest.fixture
def cast(company, other_company):
    manager = factories.AgentFactory(company=company, name="Manager")
    worker = factories.AgentFactory(company=company, name="Worker", reports_to=manager)
    peer = factories.AgentFactory(company=company, name="Peer")
    outsider = factories.AgentFactory(company=other_company, name="Outsider")
    board = factories.UserFactory()
    factories.MembershipFactory(user=board, company=company, role=Membership.Role.OWNER)
    viewer = factories.UserFactory()
    factories.MembershipFactory(user=viewer, company=company, role=Membership.Role.VIEWER)
    return {
        "agents": {"worker": worker, "manager": manager, "peer": peer, "outsider": outsider},
        "users": {"board": board, "viewer": viewer},
    }


def actor_for(cast, persona: str):
    """The persona as a caller; agents call from a live run of their own, as they must."""
    if persona in cast["users"]:
        return board_actor(cast["users"][persona])
    agent = cast["agents"][persona]
    run = factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )
    return agent_actor(agent, run_id=run.pk, run=run)


def issue_of(company, worker, status="todo", **fields) -> Issue:
    return factories.IssueFactory(company=company, status=status, assignee_agent=worker, **fields)


# Each case: what to set up and call, given the company and the cast; and who may do it.
Case = Callable[..., object]


def update_title(actor, company, cast):
    issue = issue_of(company, cast["agents"]["worker"])
    services.issue_update(actor=actor, issue=issue, changes={"title": "Renamed"})


def assign(actor, company, cast):
    issue = factories.IssueFactory(company=company, status="backlog")
    services.issue_assign(actor=actor, issue=issue, agent=cast["agents"]["worker"])


def reassign(actor, company, cast):
    issue = issue_of(company, cast["agents"]["worker"])
    services.issue_reassign(actor=actor, issue=issue, agent=cast["agents"]["peer"], reason="load")


def cancel(actor, company, cast):
    issue = issue_of(company, cast["agents"]["worker"])
    services.issue_cancel(actor=actor, issue=issue, reason="not needed")


def review(actor, company, cast):
    issue = issue_of(company, cast["agents"]["worker"], status="in_review")
    services.issue_review(actor=actor, issue=issue, verdict="accept")


def comment(actor, company, cast):
    issue = issue_of(company, cast["agents"]["worker"])
    services.comment_create(actor=actor, issue=issue, body="A note")


def delete(actor, company, cast):
    services.issue_delete(actor=actor, issue=issue_of(company, cast["agents"]["worker"]))


def force_release(actor, company, cast):
    services.issue_force_release(actor=actor, issue=issue_of(company, cast["agents"]["worker"]))


def reopen(actor, company, cast):
    issue = issue_of(company, cast["agents"]["worker"], status="done")
    services.issue_reopen(actor=actor, issue=issue)


def decide(actor, company, cast):
    approval = Approval.objects.create(
        company=company,
        type=Approval.Type.APPROVE_CEO_STRATEGY,
        payload={},
        requested_by_agent=cast["agents"]["worker"],
    )
    services.approval_decide(actor=actor, approval=approval, decision="reject")


def pause_worker(actor, company, cast):
    agent_services.agent_pause(actor=actor, agent=cast["agents"]["worker"])


def wake_worker(actor, company, cast):
    agent_services.agent_wakeup(actor=actor, agent=cast["agents"]["worker"], source="on_demand")


def finish_workers_run(actor, company, cast):
    run = factories.HeartbeatRunFactory(
        agent=cast["agents"]["worker"],
        status=HeartbeatRun.Status.RUNNING,
        started_at=timezone.now(),
    )
    agent_services.run_finish(actor=actor, run=run, outcome="succeeded")


MATRIX = {
    # service: the personas it lets through (everyone else gets NotAllowed)
    update_title: {"board", "worker", "manager"},
    assign: {"board", "worker", "manager", "peer"},  # an unassigned issue is anyone's
    reassign: {"board", "worker", "manager"},
    cancel: {"board", "worker", "manager"},
    review: {"board", "manager"},  # never the assignee itself
    comment: {"board", "worker", "manager", "peer"},
    delete: {"board"},
    force_release: {"board"},
    reopen: {"board"},
    decide: {"board"},
    pause_worker: {"board"},
    wake_worker: {"board", "worker"},  # an agent wakes only itself
    finish_workers_run: {"board", "worker"},  # a run belongs to its agent
}
CASES = [
    pytest.param(call, persona, persona in allowed, id=f"{call.__name__}-{persona}")
    for call, allowed in MATRIX.items()
    for persona in PERSONAS
]


@pytest.mark.parametrize(("call", "persona", "allowed"), CASES)
def test_each_service_lets_through_exactly_whom_design_says(company, cast, call, persona, allowed):
    actor = actor_for(cast, persona)
    before = ActivityEvent.objects.count()

    if allowed:
        call(actor, company, cast)
        assert ActivityEvent.objects.count() > before  # it did something, and logged it
    else:
        with pytest.raises(NotAllowed):
            call(actor, company, cast)
        assert ActivityEvent.objects.count() == before


def test_a_paused_agent_may_not_change_even_its_own_issue(company, cast):
    worker = cast["agents"]["worker"]
    issue = issue_of(company, worker)
    worker.pause()
    worker.save()

    with pytest.raises(NotAllowed) as refused:
        services.issue_update(actor=agent_actor(worker), issue=issue, changes={"title": "x"})

    assert refused.value.message == "Agent is not active"
    issue.refresh_from_db()
    assert issue.title != "x"
