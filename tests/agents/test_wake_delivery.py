"""Delivering wakes to HTTP agents: a real receiver on 127.0.0.1 gets a POST with the wake's
context, signed the Standard Webhooks way with the agent's secret; failures are retried with
exponential backoff and every attempt is recorded as a `WakeDelivery`.

Delivery is queued with `transaction.on_commit` and runs as the `deliver_wake` task. Most tests
run it the way production does: the database backend, drained by `db_worker --batch` (which
needs committed rows, hence `transaction=True`). A few run it inline with the immediate
backend. Agents whose adapter is not `http`, or that have no URL, poll instead.
"""

from __future__ import annotations

import base64
import json
import signal
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from agents.delivery import new_webhook_secret
from agents.models import Agent, HeartbeatRun, WakeDelivery
from companies.models import ActivityEvent
from issues.models import Issue
from paperclip.ids import new_id
from tests import factories
from tests.agents.receivers import Receiver, refused_url, running_receiver
from tests.conftest import client_for
from tests.wire import stored, wire

DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
IMMEDIATE_TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
NOT_FOUND = {"error": "Not found", "code": "not_found"}
WORKER_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def no_proxy_for_loopback(monkeypatch):
    """Deliveries to the local receivers must not go through a proxy the machine may set."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


# -- how the tests run background work -------------------------------------------------------------


@pytest.fixture
def database_tasks(settings):
    """Production's backend: a wake waits in the database until the worker runs it."""
    settings.TASKS = DATABASE_TASKS


@pytest.fixture
def immediate_tasks(settings):
    """Delivery runs inline, when the request's transaction commits."""
    settings.TASKS = IMMEDIATE_TASKS


@pytest.fixture
def fast_retries(settings):
    settings.PAPERCLIP_WAKE_RETRY_BASE_SECONDS = 0


def run_worker(*args: str) -> None:
    """`manage.py db_worker --batch`: run every task that is due, then stop.

    The worker installs its own signal handlers; they are put back afterwards. A task that
    crashed (rather than recording a failed attempt) fails the test with its traceback.
    """
    saved = {sig: signal.getsignal(sig) for sig in WORKER_SIGNALS}
    try:
        call_command(
            "db_worker", "--batch", "--no-startup-delay", "--no-reload", *args, stdout=StringIO()
        )
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    crashed = DBTaskResult.objects.failed()
    assert not crashed.exists(), [row.traceback for row in crashed]


def pending_deliveries() -> list[DBTaskResult]:
    """Delivery tasks still waiting to run (now or later)."""
    return list(DBTaskResult.objects.filter(status="READY", task_path__endswith="deliver_wake"))


# -- receivers and agents --------------------------------------------------------------------------


@pytest.fixture
def receiver():
    """An agent's endpoint that accepts every wake."""
    with running_receiver() as server:
        yield server


@pytest.fixture
def flaky_receiver():
    """An endpoint that answers 500 twice, then 200."""
    with running_receiver(statuses=(500, 500)) as server:
        yield server


def http_agent(company, url: str | None, **fields) -> Agent:
    config = {"url": url} if url else {}
    fields.setdefault("name", "Courier")
    return factories.AgentFactory(
        company=company,
        adapter_type=Agent.Adapter.HTTP,
        adapter_config=config,
        webhook_secret=new_webhook_secret(),
        **fields,
    )


def hire(board, company, **fields) -> dict:
    """The board hires an agent through the API; the answer carries its webhook secret."""
    response = board.post(f"/api/companies/{company.pk}/agents", fields, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def url_of(receiver: Receiver) -> dict:
    return {"url": receiver.url}


def wake_up(board, agent_id: str, payload: dict | None = None) -> dict:
    response = board.post(
        f"/api/agents/{agent_id}/wakeup", {"payload": payload or {}}, format="json"
    )
    assert response.status_code == 202, response.json()
    return response.json()


def create_issue(board, company, **fields) -> dict:
    response = board.post(f"/api/companies/{company.pk}/issues", fields, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def attempts(run_id: str) -> list[tuple[int, bool, int | None]]:
    """(attempt, succeeded, status code) of every delivery of the run, in order."""
    rows = WakeDelivery.objects.filter(run_id=run_id).order_by("attempt")
    return [(row.attempt, row.succeeded, row.status_code) for row in rows]


def verified(receiver: Receiver, secret: str) -> list[dict]:
    """Every wake the receiver got, each checked against the secret (raises if one fails)."""
    return [Webhook(secret).verify(request.body, request.headers) for request in receiver.requests]


# -- what is delivered -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_http_agent_assigned_an_issue_receives_a_signed_wake_with_its_context(
    board, company, receiver, database_tasks, settings
):
    settings.PAPERCLIP_API_URL = "https://paperclip.example.com"
    hired = hire(board, company, name="Courier", adapterType="http", adapterConfig=url_of(receiver))

    issue = create_issue(board, company, title="Ship the release", assigneeAgentId=hired["id"])

    assert receiver.requests == []  # the request only queued the delivery
    run_worker()
    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/wake")
    assert request.headers["content-type"] == "application/json"
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= set(request.headers)
    payload = Webhook(hired["webhookSecret"]).verify(request.body, request.headers)
    run = HeartbeatRun.objects.get(agent_id=stored(hired["id"], Agent))
    assert request.headers["webhook-id"] == wire(run)  # the run, as the payload names it
    assert payload == {
        "type": "agent.wake",
        "runId": wire(run),
        "runToken": payload["runToken"],
        "agentId": hired["id"],
        "companyId": wire(company),
        "taskId": issue["id"],
        "wakeReason": "issue_assigned",
        "wakeCommentId": None,
        "approvalId": None,
        "approvalStatus": None,
        "linkedIssueIds": [],
        "apiUrl": "https://paperclip.example.com",
    }
    [delivery] = WakeDelivery.objects.filter(run=run)
    assert (delivery.attempt, delivery.url, delivery.status_code) == (1, receiver.url, 200)
    assert (delivery.succeeded, delivery.error) == (True, "")
    assert pending_deliveries() == []


@pytest.mark.django_db(transaction=True)
def test_delivered_run_token_authenticates_as_the_woken_agent(
    board, company, receiver, database_tasks
):
    courier = http_agent(company, receiver.url)
    wake_up(board, courier.pk)

    run_worker()

    [payload] = verified(receiver, courier.webhook_secret)
    response = client_for(payload["runToken"]).get("/api/agents/me")
    assert response.status_code == 200, response.json()
    assert (response.json()["id"], response.json()["name"]) == (wire(courier), "Courier")


@pytest.mark.django_db(transaction=True)
def test_comment_wake_delivers_the_comment_id(board, company, receiver, database_tasks):
    courier = http_agent(company, receiver.url)
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=courier)

    response = board.post(f"/api/issues/{issue.pk}/comments", {"body": "Any news?"}, format="json")

    assert response.status_code == 201, response.json()
    run_worker()
    [payload] = verified(receiver, courier.webhook_secret)
    assert (payload["taskId"], payload["wakeReason"], payload["wakeCommentId"]) == (
        wire(issue),
        "issue_commented",
        response.json()["id"],
    )


@pytest.mark.django_db(transaction=True)
def test_wakeup_delivers_the_approval_and_linked_issues_it_names(
    board, company, receiver, database_tasks
):
    courier = http_agent(company, receiver.url)
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=courier)
    linked = factories.IssueFactory(company=company)
    approval_id = new_id("apr")

    woken = wake_up(
        board,
        courier.pk,
        {
            "taskId": issue.pk,
            "approvalId": approval_id,
            "approvalStatus": "approved",
            "linkedIssueIds": [linked.pk],
        },
    )

    run_worker()
    [payload] = verified(receiver, courier.webhook_secret)
    assert payload["runId"] == woken["id"]
    assert {key: payload[key] for key in ("taskId", "approvalId", "approvalStatus")} == {
        "taskId": wire(issue),
        "approvalId": wire(approval_id),
        "approvalStatus": "approved",
    }
    assert payload["linkedIssueIds"] == [wire(linked)]


@pytest.mark.django_db(transaction=True)
def test_wakes_merged_into_one_queued_run_are_delivered_once_with_the_latest_context(
    board, company, receiver, database_tasks
):
    courier = http_agent(company, receiver.url)
    issue = create_issue(board, company, title="Fix the build", assigneeAgentId=courier.pk)
    comment = board.post(
        f"/api/issues/{issue['id']}/comments", {"body": "Red again"}, format="json"
    )
    assert comment.status_code == 201, comment.json()

    run_worker()

    [payload] = verified(receiver, courier.webhook_secret)
    assert (payload["wakeReason"], payload["wakeCommentId"]) == (
        "issue_commented",
        comment.json()["id"],
    )
    assert HeartbeatRun.objects.filter(agent=courier).count() == 1


# -- retries ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["database", "immediate"])
def test_receiver_failing_twice_then_succeeding_gets_three_recorded_attempts(
    board, company, flaky_receiver, fast_retries, settings, backend
):
    settings.TASKS = DATABASE_TASKS if backend == "database" else IMMEDIATE_TASKS
    courier = http_agent(company, flaky_receiver.url)

    woken = wake_up(board, courier.pk)

    if backend == "database":
        run_worker()
    run_id = stored(woken["id"], HeartbeatRun)
    assert attempts(run_id) == [(1, False, 500), (2, False, 500), (3, True, 200)]
    failed = WakeDelivery.objects.filter(run_id=run_id, succeeded=False)
    assert all(row.error for row in failed)
    assert WakeDelivery.objects.get(run_id=run_id, attempt=3).error == ""
    payloads = verified(flaky_receiver, courier.webhook_secret)
    assert [payload["runId"] for payload in payloads] == [woken["id"]] * 3
    assert pending_deliveries() == []


@pytest.mark.django_db(transaction=True)
def test_every_attempt_at_one_wake_carries_the_same_webhook_id(
    board, company, flaky_receiver, fast_retries, database_tasks
):
    """Standard Webhooks: the id identifies the message and "remains the same no matter how
    many times a webhook that has failed is retried"; receivers use it to drop duplicates."""
    courier = http_agent(company, flaky_receiver.url)
    wake_up(board, courier.pk)

    run_worker()

    ids = [request.headers["webhook-id"] for request in flaky_receiver.requests]
    assert len(ids) == 3
    assert len(set(ids)) == 1, ids


@pytest.mark.django_db(transaction=True)
def test_failed_delivery_is_retried_after_a_backoff_that_doubles(
    board, company, flaky_receiver, database_tasks, settings
):
    settings.PAPERCLIP_WAKE_RETRY_BASE_SECONDS = 5
    courier = http_agent(company, flaky_receiver.url)
    woken = wake_up(board, courier.pk)
    run_id = stored(woken["id"], HeartbeatRun)

    for attempt, delay in ((1, 5), (2, 10)):
        before = timezone.now()
        run_worker()
        after = timezone.now()
        assert [row[0] for row in attempts(run_id)] == list(range(1, attempt + 1))
        [retry] = pending_deliveries()
        assert retry.args_kwargs == {"args": [run_id, attempt + 1], "kwargs": {}}
        assert before + timedelta(seconds=delay) <= retry.run_after
        assert retry.run_after <= after + timedelta(seconds=delay)
        run_worker()  # not due yet: nothing happens
        assert len(attempts(run_id)) == attempt
        # Time passes: the retry is due.
        DBTaskResult.objects.filter(pk=retry.pk).update(run_after=timezone.now())

    run_worker()
    assert attempts(run_id) == [(1, False, 500), (2, False, 500), (3, True, 200)]
    assert pending_deliveries() == []


@pytest.mark.django_db(transaction=True)
def test_receiver_that_is_down_gets_max_attempts_each_recording_the_error(
    board, company, fast_retries, database_tasks, settings
):
    settings.PAPERCLIP_WAKE_MAX_ATTEMPTS = 3
    url = refused_url()
    courier = http_agent(company, url)

    woken = wake_up(board, courier.pk)

    run_worker()
    rows = list(
        WakeDelivery.objects.filter(run_id=stored(woken["id"], HeartbeatRun)).order_by("attempt")
    )
    assert [(row.attempt, row.url, row.succeeded, row.status_code) for row in rows] == [
        (1, url, False, None),
        (2, url, False, None),
        (3, url, False, None),
    ]
    assert all("refused" in row.error.lower() for row in rows), [row.error for row in rows]
    assert pending_deliveries() == []


# -- who is not delivered to -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_run_that_started_before_delivery_is_not_delivered(
    board, company, receiver, database_tasks
):
    courier = http_agent(company, receiver.url)
    woken = wake_up(board, courier.pk)
    key = factories.AgentApiKeyFactory(agent=courier)
    started = client_for(key.token).post(f"/api/heartbeat-runs/{woken['id']}/start")
    assert started.status_code == 200, started.json()

    run_worker()

    assert receiver.requests == []
    assert attempts(stored(woken["id"], HeartbeatRun)) == []


@pytest.mark.django_db(transaction=True)
def test_retry_is_not_sent_once_the_run_has_started(board, company, fast_retries, database_tasks):
    with running_receiver(statuses=(500,)) as receiver:
        courier = http_agent(company, receiver.url)
        woken = wake_up(board, courier.pk)
        run_id = stored(woken["id"], HeartbeatRun)
        run_worker("--max-tasks", "1")
        assert attempts(run_id) == [(1, False, 500)]
        key = factories.AgentApiKeyFactory(agent=courier)
        started = client_for(key.token).post(f"/api/heartbeat-runs/{woken['id']}/start")
        assert started.status_code == 200, started.json()

        run_worker()

        assert attempts(run_id) == [(1, False, 500)]
        assert len(receiver.requests) == 1
        assert pending_deliveries() == []


@pytest.mark.django_db(transaction=True)
def test_run_cancelled_before_delivery_is_not_delivered(board, company, receiver, database_tasks):
    courier = http_agent(company, receiver.url)
    woken = wake_up(board, courier.pk)
    cancelled = board.post(f"/api/heartbeat-runs/{woken['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.json()

    run_worker()

    assert receiver.requests == []
    assert attempts(stored(woken["id"], HeartbeatRun)) == []


@pytest.mark.django_db(transaction=True)
def test_process_agent_gets_no_delivery_even_with_a_url(board, company, receiver, database_tasks):
    poller = factories.AgentFactory(
        company=company,
        name="Poller",
        adapter_type=Agent.Adapter.PROCESS,
        adapter_config={"url": receiver.url},
        webhook_secret=new_webhook_secret(),
    )

    issue = create_issue(board, company, title="Poll for me", assigneeAgentId=poller.pk)

    run = HeartbeatRun.objects.get(agent=poller)
    # Woken: it finds the run.
    assert (run.issue_id, run.status) == (stored(issue["id"], Issue), "queued")
    assert pending_deliveries() == []
    run_worker()
    assert receiver.requests == []
    assert attempts(run.pk) == []


@pytest.mark.django_db(transaction=True)
def test_http_agent_without_a_url_gets_no_delivery(board, company, database_tasks):
    courier = http_agent(company, url=None)

    woken = wake_up(board, courier.pk)

    run_worker()
    run_id = stored(woken["id"], HeartbeatRun)
    assert attempts(run_id) == []
    assert HeartbeatRun.objects.get(pk=run_id).status == "queued"


# -- the signing secret ----------------------------------------------------------------------------


def test_creating_an_agent_answers_its_webhook_secret_once(board, company):
    hired = hire(board, company, name="Courier", adapterType="http")

    secret = hired["webhookSecret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    agent = Agent.objects.get(pk=stored(hired["id"], Agent))
    assert agent.webhook_secret == secret
    key = factories.AgentApiKeyFactory(agent=agent)
    answers = [
        board.get(f"/api/agents/{agent.pk}"),
        board.get(f"/api/companies/{company.pk}/agents"),
        board.patch(f"/api/agents/{agent.pk}", {"title": "Runner"}, format="json"),
        client_for(key.token).get("/api/agents/me"),
    ]
    for response in answers:
        assert response.status_code == 200, response.json()
        assert "webhookSecret" not in response.content.decode()
        assert secret not in response.content.decode()


def test_each_agent_gets_its_own_webhook_secret(board, company):
    first = hire(board, company, name="Courier", adapterType="http")
    second = hire(board, company, name="Runner", adapterType="http")

    assert first["webhookSecret"] != second["webhookSecret"]


def test_board_rotating_the_webhook_secret_gets_a_new_one_shown_once(board, board_user, company):
    courier = http_agent(company, "http://127.0.0.1:9/wake")
    old = courier.webhook_secret

    response = board.post(f"/api/agents/{courier.pk}/webhook-secret")

    assert response.status_code == 201, response.json()
    new = response.json()["webhookSecret"]
    assert response.json() == {"webhookSecret": new}
    assert new.startswith("whsec_") and new != old
    assert len(base64.b64decode(new.removeprefix("whsec_"))) >= 24
    courier.refresh_from_db()
    assert courier.webhook_secret == new
    shown = board.get(f"/api/agents/{courier.pk}")
    assert "webhookSecret" not in shown.json() and new not in shown.content.decode()
    [row] = ActivityEvent.objects.filter(
        entity_id=courier.pk, action="agent.webhook_secret_rotated"
    )
    assert (row.actor_type, row.actor_id) == ("user", board_user.pk)
    assert new not in json.dumps(row.details) and old not in json.dumps(row.details)


@pytest.mark.parametrize("whose", ["own", "peer"])
def test_agents_may_not_rotate_a_webhook_secret(company, whose):
    courier = http_agent(company, "http://127.0.0.1:9/wake")
    peer = http_agent(company, "http://127.0.0.1:9/wake", name="Runner")
    caller = client_for(factories.AgentApiKeyFactory(agent=courier).token)
    target = courier if whose == "own" else peer
    before = target.webhook_secret

    response = caller.post(f"/api/agents/{target.pk}/webhook-secret")

    assert response.status_code == 403, response.json()
    assert response.json()["code"] == "forbidden"
    target.refresh_from_db()
    assert target.webhook_secret == before


def test_rotating_another_companys_agents_secret_is_404(board, other_agent):
    before = other_agent.webhook_secret

    response = board.post(f"/api/agents/{other_agent.pk}/webhook-secret")

    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    other_agent.refresh_from_db()
    assert other_agent.webhook_secret == before


def test_rotating_the_secret_of_an_unknown_agent_is_404(board):
    response = board.post(f"/api/agents/{new_id('agt')}/webhook-secret")

    assert (response.status_code, response.json()) == (404, NOT_FOUND)


@pytest.mark.django_db
def test_after_rotation_wakes_verify_with_the_new_secret_only(
    board, company, receiver, immediate_tasks, django_capture_on_commit_callbacks
):
    hired = hire(board, company, name="Courier", adapterType="http", adapterConfig=url_of(receiver))
    rotated = board.post(f"/api/agents/{hired['id']}/webhook-secret")
    assert rotated.status_code == 201, rotated.json()
    old, new = hired["webhookSecret"], rotated.json()["webhookSecret"]

    with django_capture_on_commit_callbacks(execute=True):
        woken = wake_up(board, hired["id"])

    [request] = receiver.requests
    assert Webhook(new).verify(request.body, request.headers)["runId"] == woken["id"]
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(request.body, request.headers)
    assert attempts(stored(woken["id"], HeartbeatRun)) == [(1, True, 200)]
