"""Domain events reach the webhook endpoints that subscribed to them (DESIGN §9).

Every change is made the way a caller makes it (`/v1`, `/api`, a service call), then the
database worker runs: the dispatcher fans the event out, the delivery task POSTs it to a real
receiver on 127.0.0.1, and the test verifies each request with `standardwebhooks` and the
endpoint's secret. An event arrives once, with its type, the `/v1` task as the change left it,
and `previous` (the `/v1` fields the change altered, with their old values).
"""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook

from agents.delivery import new_webhook_secret
from agents.models import WebhookDelivery, WebhookEndpoint
from companies.authentication import board_actor
from issues import events
from issues.models import Event, Issue, Status
from issues.services.verbs import issue_cancel
from tests import factories
from tests.agents.receivers import running_receiver
from tests.agents.test_wake_delivery import run_worker
from tests.conftest import client_for
from tests.factories import live_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("database_tasks")]


@pytest.fixture
def database_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.fixture
def peer(company):
    return factories.AgentFactory(company=company, name="Peer")


def endpoint(company, url: str, events=("*",), **fields) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        company=company, url=url, events=list(events), secret=new_webhook_secret(), **fields
    )


def received(receiver, hook: WebhookEndpoint) -> list[dict]:
    """Every event the receiver got, each verified with the endpoint's secret."""
    bodies = []
    for request in receiver.requests:
        event = Webhook(hook.secret).verify(request.body, request.headers)
        assert request.headers["webhook-id"] == event["id"]
        bodies.append(event)
    return bodies


def task_of(client, issue_id: str) -> dict:
    issue = Issue.objects.get(pk=issue_id)
    response = client.get(f"/v1/companies/{issue.company_id}/issues/{issue_id}")
    assert response.status_code == 200, response.json()
    return response.json()["data"]


def v1(issue: Issue, verb: str) -> str:
    return f"/v1/companies/{issue.company_id}/issues/{issue.pk}/{verb}"


def settle() -> None:
    """Run the worker until nothing is due (the dispatch, then the deliveries it queued)."""
    run_worker()
    run_worker()


# -- each of the ten 003 events, as a /v1 (or /api) caller causes it -----------------------------


def queued(company, agent, peer):
    return factories.IssueFactory(company=company, status=Status.BACKLOG), {}


def assigned(company, agent, peer):
    issue = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    return issue, {}


def claimed(company, agent, peer, agent_client):
    issue, _ = assigned(company, agent, peer)
    response = agent_client.post(v1(issue, "runs"), {}, format="json")
    assert response.status_code == 201, response.json()
    return issue, {"runId": response.json()["data"]["id"]}


def in_review(company, agent, peer):
    issue = factories.IssueFactory(company=company, status=Status.IN_REVIEW, assignee_agent=agent)
    return issue, {}


CASES = {
    # type: (setup, who, method, path, body, previous)
    "issue.assigned": (
        queued, "board", "post", "assign", lambda ctx: {"agentId": ctx["agent"]},
        lambda ctx: {"status": "queued", "assignedAgentId": None},
    ),
    "issue.reassigned": (
        assigned, "board", "post", "reassign", lambda ctx: {"toAgentId": ctx["peer"]},
        lambda ctx: {"assignedAgentId": ctx["agent"], "statusReason": None},
    ),
    "issue.started": (
        assigned, "agent", "post", "runs", lambda ctx: {},
        lambda ctx: {"status": "assigned", "currentRunId": None},
    ),
    "issue.progress": (
        claimed, "agent", "post", "runs/{runId}/progress",
        lambda ctx: {"checkpoint": {"step": 2}, "message": "half way"},
        lambda ctx: {},
    ),
    "issue.review": (
        claimed, "agent", "post", "runs/{runId}/complete", lambda ctx: {"summary": "done"},
        lambda ctx: {"status": "running", "currentRunId": ctx["runId"]},
    ),
    "issue.done": (
        in_review, "board", "post", "review", lambda ctx: {"verdict": "accept"},
        lambda ctx: {"status": "review"},
    ),
    "issue.failed": (
        claimed, "agent", "post", "runs/{runId}/fail", lambda ctx: {"reason": "broken"},
        lambda ctx: {"status": "running", "currentRunId": ctx["runId"]},
    ),
    "issue.cancelled": (
        assigned, "board", "post", "cancel", lambda ctx: {"reason": "not needed"},
        lambda ctx: {"status": "assigned"},
    ),
    "issue.handoff": (
        claimed, "agent", "post", "runs/{runId}/handoff", lambda ctx: {"reason": "stuck"},
        lambda ctx: {"status": "running", "currentRunId": ctx["runId"]},
    ),
}  # fmt: skip


@pytest.mark.parametrize("event_type", list(CASES))
def test_each_003_event_through_v1_arrives_once_with_its_task_and_previous(
    board, agent_client, company, agent, peer, event_type
):
    setup, who, method, path, body, previous = CASES[event_type]
    if setup is claimed:
        issue, ctx = setup(company, agent, peer, agent_client)
    else:
        issue, ctx = setup(company, agent, peer)
    ctx |= {"agent": agent.pk, "peer": peer.pk}
    settle()  # what the setup caused is dispatched before anyone listens
    client = board if who == "board" else agent_client
    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url)

        response = getattr(client, method)(v1(issue, path.format(**ctx)), body(ctx), format="json")
        assert response.status_code in (200, 201), response.json()
        settle()

    [event] = received(receiver, hook)
    assert event["type"] == event_type
    assert event["id"].startswith("evt_")
    assert event["companyId"] == company.pk
    assert event["data"] == {"task": task_of(board, issue.pk), "previous": previous(ctx)}
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.event_id, delivery.status, delivery.attempt) == (event["id"], "succeeded", 1)


def test_issue_created_through_v1_carries_the_new_task_and_no_previous(board, board_user, company):
    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url)
        response = board.post(
            f"/v1/companies/{company.pk}/issues", {"title": "Ship it"}, format="json"
        )
        assert response.status_code == 201, response.json()
        settle()

    [event] = received(receiver, hook)
    created = response.json()["data"]
    assert event == {
        "id": event["id"],
        "type": "issue.created",
        "createdAt": event["createdAt"],
        "companyId": company.pk,
        "actor": {"type": "user", "id": board_user.pk},
        "runId": None,
        "data": {"task": created, "previous": {}},
    }
    assert created["status"] == "queued"


# -- /api ------------------------------------------------------------------------------------


def test_issue_created_through_api_is_the_same_event_in_v1_form(board, company):
    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url)
        response = board.post(
            f"/api/companies/{company.pk}/issues", {"title": "From /api"}, format="json"
        )
        assert response.status_code == 201, response.json()
        settle()

    [event] = received(receiver, hook)
    issue = Issue.objects.get()
    assert event["type"] == "issue.created"
    assert event["data"] == {"task": task_of(board, issue.pk), "previous": {}}
    assert event["data"]["task"]["id"] == issue.pk  # the prefixed id, not /api's UUID


@pytest.mark.parametrize(
    ("status", "start", "event_type", "previous"),
    [
        ("done", Status.IN_REVIEW, "issue.done", {"status": "review"}),
        ("cancelled", Status.TODO, "issue.cancelled", {"status": "assigned"}),
        ("in_review", Status.IN_PROGRESS, "issue.review", {"status": "running"}),
        ("blocked", Status.TODO, "issue.handoff", {"status": "assigned"}),
        ("failed", Status.IN_PROGRESS, "issue.failed", {"status": "running"}),
    ],
)
def test_a_status_patch_through_api_is_the_event_of_where_it_went(
    board, company, agent, status, start, event_type, previous
):
    issue = factories.IssueFactory(company=company, status=start, assignee_agent=agent)
    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url)
        response = board.patch(f"/api/issues/{issue.pk}", {"status": status}, format="json")
        assert response.status_code == 200, response.json()
        settle()

    [event] = received(receiver, hook)
    assert event["type"] == event_type
    assert event["data"] == {"task": task_of(board, issue.pk), "previous": previous}


def test_assigning_and_reassigning_through_api_are_their_events(board, company, agent, peer):
    issue = factories.IssueFactory(company=company, status=Status.TODO)
    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url)
        for who in (agent, peer):
            response = board.patch(
                f"/api/issues/{issue.pk}", {"assigneeAgentId": who.pk}, format="json"
            )
            assert response.status_code == 200, response.json()
        settle()

    assigned, reassigned = received(receiver, hook)
    assert (assigned["type"], assigned["data"]["previous"]) == (
        "issue.assigned",
        {"status": "queued", "assignedAgentId": None},
    )
    assert (reassigned["type"], reassigned["data"]["previous"]) == (
        "issue.reassigned",
        {"assignedAgentId": agent.pk},
    )


def test_a_checkout_through_api_is_issue_started(company, agent):
    issue = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    run = live_run(agent)
    key = factories.AgentApiKeyFactory(agent=agent).token
    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url)
        response = client_for(key, run_id=run.pk).post(
            f"/api/issues/{issue.pk}/checkout", {"expectedStatuses": ["todo"]}, format="json"
        )
        assert response.status_code == 200, response.json()
        settle()

    [event] = received(receiver, hook)
    assert (event["type"], event["runId"], event["data"]["previous"]) == (
        "issue.started",
        run.pk,
        {"status": "assigned", "currentRunId": None},
    )
    assert event["data"]["task"]["currentRunId"] == run.pk


def test_a_comment_from_the_run_holding_it_through_api_is_issue_progress(company, agent, peer):
    run, other_run = live_run(agent), live_run(peer)
    issue = factories.IssueFactory(
        company=company, status=Status.IN_PROGRESS, assignee_agent=agent, checkout_run=run
    )
    holder = client_for(factories.AgentApiKeyFactory(agent=agent).token, run_id=run.pk)
    bystander = client_for(factories.AgentApiKeyFactory(agent=peer).token, run_id=other_run.pk)
    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url)
        for client in (holder, bystander):
            response = client.post(
                f"/api/issues/{issue.pk}/comments", {"body": "half way"}, format="json"
            )
            assert response.status_code == 201, response.json()
        settle()

    progress, commented = sorted(
        received(receiver, hook), key=lambda event: event["runId"] != run.pk
    )
    assert (progress["type"], progress["runId"]) == ("issue.progress", run.pk)
    assert (commented["type"], commented["runId"]) == ("issue.commented", other_run.pk)
    assert progress["data"]["task"]["currentRunId"] == run.pk


def test_a_title_patch_through_api_is_issue_updated_with_the_old_title(board, company):
    issue = factories.IssueFactory(company=company, title="Old")
    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url)
        board.patch(f"/api/issues/{issue.pk}", {"title": "New"}, format="json")
        settle()

    [event] = received(receiver, hook)
    assert (event["type"], event["data"]["previous"]) == ("issue.updated", {"title": "Old"})
    assert event["data"]["task"]["title"] == "New"


# -- subscriptions ---------------------------------------------------------------------------


def test_an_endpoint_subscribed_to_one_event_gets_only_that_one(board, company, agent):
    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url, events=["issue.cancelled"])
        created = board.post(
            f"/v1/companies/{company.pk}/issues",
            {"title": "Short-lived", "assignedAgentId": agent.pk},
            format="json",
        ).json()["data"]
        board.post(f"/v1/companies/{company.pk}/issues/{created['id']}/cancel", {}, format="json")
        settle()

    assert [event["type"] for event in received(receiver, hook)] == ["issue.cancelled"]
    assert list(Event.objects.values_list("type", flat=True)) == [
        "issue.created",
        "issue.cancelled",
    ]


def test_an_inactive_endpoint_gets_nothing(board, company):
    with running_receiver() as receiver:
        endpoint(company, receiver.url, active=False)
        board.post(f"/v1/companies/{company.pk}/issues", {"title": "Quiet"}, format="json")
        settle()

    assert receiver.requests == []
    assert not WebhookDelivery.objects.exists()
    assert not Event.objects.undispatched().exists()


def test_an_endpoint_gets_only_its_own_companys_events(board, other_board, company, other_company):
    with running_receiver() as ours, running_receiver() as theirs:
        our_hook = endpoint(company, ours.url)
        their_hook = endpoint(other_company, theirs.url)
        board.post(f"/v1/companies/{company.pk}/issues", {"title": "Ours"}, format="json")
        other_board.post(
            f"/v1/companies/{other_company.pk}/issues", {"title": "Theirs"}, format="json"
        )
        settle()  # both events in one dispatch

    [mine] = received(ours, our_hook)
    [other] = received(theirs, their_hook)
    assert (mine["companyId"], mine["data"]["task"]["title"]) == (company.pk, "Ours")
    assert (other["companyId"], other["data"]["task"]["title"]) == (other_company.pk, "Theirs")


# -- every way in emits the same event -------------------------------------------------------


def test_a_service_call_emits_the_same_event_as_v1(board, board_user, company, agent):
    by_v1 = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    by_service = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url)
        board.post(v1(by_v1, "cancel"), {"reason": "dup"}, format="json")
        issue_cancel(actor=board_actor(board_user), issue=by_service, reason="dup")
        settle()

    first, second = sorted(
        received(receiver, hook), key=lambda e: e["data"]["task"]["title"] != by_v1.title
    )
    assert (first["type"], second["type"]) == ("issue.cancelled", "issue.cancelled")
    assert first["data"]["previous"] == second["data"]["previous"] == {"status": "assigned"}
    assert second["data"]["task"] == task_of(board, by_service.pk)
    assert first["actor"] == second["actor"] == {"type": "user", "id": board_user.pk}


def test_pausing_an_agent_is_agent_paused_carrying_the_agent(board, company, agent):
    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url)
        response = board.post(f"/api/agents/{agent.pk}/pause", {}, format="json")
        assert response.status_code == 200, response.json()
        settle()

    [event] = received(receiver, hook)
    assert event["type"] == "agent.paused"
    assert event["data"] == {
        "agent": {
            "id": agent.pk,
            "companyId": company.pk,
            "name": agent.name,
            "role": agent.role,
            "status": "paused",
        },
        "previous": {"status": "active"},
    }


# -- at-least-once ---------------------------------------------------------------------------


def test_an_event_survives_a_dispatcher_that_dies_before_commit(board, company, monkeypatch):
    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url)
        board.post(f"/v1/companies/{company.pk}/issues", {"title": "Durable"}, format="json")

        def killed(*args, **kwargs):
            raise RuntimeError("worker killed")

        monkeypatch.setattr(events, "queue_attempt", killed)
        with pytest.raises(RuntimeError):
            events.dispatch_events.call()
        [event] = Event.objects.undispatched()  # nothing of the dead dispatch was kept
        assert not WebhookDelivery.objects.exists()

        monkeypatch.undo()
        settle()

    [delivered] = received(receiver, hook)
    assert (delivered["id"], delivered["type"]) == (event.pk, "issue.created")
    assert not Event.objects.undispatched().exists()
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_a_second_dispatch_sends_nothing_again(board, company):
    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url)
        board.post(f"/v1/companies/{company.pk}/issues", {"title": "Once"}, format="json")
        settle()
        assert events.dispatch_events.call() == 0
        settle()

    assert len(received(receiver, hook)) == 1


def test_the_sweep_command_dispatches_events_whose_dispatch_was_never_queued(board, company):
    """A process that dies between its commit and queueing the dispatch leaves the event
    waiting; `manage.py dispatch_events` sends it on."""
    from io import StringIO

    from django.core.management import call_command
    from django_tasks_db.models import DBTaskResult

    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url)
        board.post(f"/v1/companies/{company.pk}/issues", {"title": "Stranded"}, format="json")
        DBTaskResult.objects.all().delete()  # the queued dispatch is lost
        assert Event.objects.undispatched().count() == 1

        out = StringIO()
        call_command("dispatch_events", "--json", stdout=out)
        run_worker()

    assert out.getvalue().strip() == '{"dispatched": 1, "requeued": 0}'
    assert [event["type"] for event in received(receiver, hook)] == ["issue.created"]
    assert not Event.objects.undispatched().exists()
