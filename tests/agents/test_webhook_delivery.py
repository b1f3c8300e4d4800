"""How the worker treats a webhook endpoint that keeps failing or never answers (DESIGN §9): an
endpoint whose every delivery has failed for 24 hours is disabled with a reason when a delivery
fails (the clock is moved by dating the earlier failures back, not waited for), and the board's
re-enabling clears it; a receiver that accepts the connection and never answers fails the attempt
within the webhook timeout, and the next delivery still goes."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.utils import timezone

from agents import delivery
from agents.delivery import DISABLED_REASON, new_webhook_secret
from agents.models import WebhookDelivery, WebhookEndpoint
from companies.models import ActivityEvent
from tests.agents.receivers import running_receiver
from tests.agents.test_wake_delivery import DATABASE_TASKS, run_worker


@pytest.fixture(autouse=True)
def worker(settings, monkeypatch):
    """The database worker, and no retries: each test looks at one attempt's consequences."""
    settings.TASKS = DATABASE_TASKS
    monkeypatch.setattr(delivery, "WEBHOOK_RETRY_DELAYS", ())


def make_webhook(company, url: str) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        company=company, url=url, events=["*"], secret=new_webhook_secret()
    )


def logged(webhook: WebhookEndpoint, status: str, hours_ago: float) -> WebhookDelivery:
    """An earlier attempt in the endpoint's log, queued `hours_ago`."""
    return WebhookDelivery.objects.create(
        company_id=webhook.company_id,
        endpoint=webhook,
        event_id="evt_01m8rd9461psyv1mhrdaj30j6k",
        event_type="ping",
        payload={"type": "ping"},
        status=status,
        created_at=timezone.now() - timedelta(hours=hours_ago),
    )


def ping(board, webhook: WebhookEndpoint):
    response = board.post(f"/api/webhooks/{webhook.pk}/test")
    assert response.status_code == 202, response.json()
    return response


def disabled_rows(webhook: WebhookEndpoint) -> list[tuple[str, str, dict]]:
    rows = ActivityEvent.objects.filter(entity_id=webhook.pk, action="webhook.disabled")
    return [(r.actor_type, r.actor_id, r.details) for r in rows]


# -- disabled after 24 hours of failures -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_failure_after_24_hours_of_nothing_but_failures_disables_the_endpoint(board, company):
    with running_receiver(statuses=(500,)) as receiver:
        webhook = make_webhook(company, receiver.url)
        first = logged(webhook, "failed", hours_ago=25)
        logged(webhook, "failed", hours_ago=3)
        waiting = logged(webhook, "pending", hours_ago=1)  # a retry waiting for its time
        ping(board, webhook)
        run_worker()

    assert len(receiver.requests) == 1
    webhook.refresh_from_db()
    assert (webhook.active, webhook.disabled_reason) == (False, DISABLED_REASON)
    # a retry still waiting is not sent to a disabled endpoint
    waiting.refresh_from_db()
    assert (waiting.status, waiting.error) == ("failed", f"Not sent: {DISABLED_REASON}")
    assert disabled_rows(webhook) == [
        (
            "system",
            "system",
            {"reason": DISABLED_REASON, "failingSince": first.created_at.isoformat()},
        )
    ]
    shown = board.get(f"/api/webhooks/{webhook.pk}").json()
    assert (shown["active"], shown["disabledReason"]) == (
        False,
        "Every delivery failed for 24 hours",
    )

    # the board re-enables it: active, the reason gone
    response = board.patch(f"/api/webhooks/{webhook.pk}", {"active": True}, format="json")
    assert (response.json()["active"], response.json()["disabledReason"]) == (True, "")


@pytest.mark.django_db(transaction=True)
def test_failing_for_less_than_24_hours_keeps_the_endpoint_active(board, company):
    with running_receiver(statuses=(500,)) as receiver:
        webhook = make_webhook(company, receiver.url)
        logged(webhook, "failed", hours_ago=23)
        ping(board, webhook)
        run_worker()

    webhook.refresh_from_db()
    assert (webhook.active, webhook.disabled_reason) == (True, "")
    assert disabled_rows(webhook) == []


@pytest.mark.django_db(transaction=True)
def test_a_success_since_the_old_failures_restarts_the_24_hours(board, company):
    with running_receiver(statuses=(500,)) as receiver:
        webhook = make_webhook(company, receiver.url)
        logged(webhook, "failed", hours_ago=48)
        logged(webhook, "succeeded", hours_ago=30)
        logged(webhook, "failed", hours_ago=20)
        ping(board, webhook)
        run_worker()

    webhook.refresh_from_db()
    assert (webhook.active, webhook.disabled_reason) == (True, "")


@pytest.mark.django_db(transaction=True)
def test_a_success_does_not_disable_however_old_the_failures(board, company):
    with running_receiver() as receiver:
        webhook = make_webhook(company, receiver.url)
        logged(webhook, "failed", hours_ago=30)
        ping(board, webhook)
        run_worker()

    webhook.refresh_from_db()
    assert (webhook.active, webhook.disabled_reason) == (True, "")
    assert WebhookDelivery.objects.filter(status="succeeded").count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_already_disabled_is_not_disabled_again(board, company):
    with running_receiver(statuses=(500,)) as receiver:
        webhook = make_webhook(company, receiver.url)
        webhook.active = False
        webhook.save(update_fields=["active"])
        logged(webhook, "failed", hours_ago=25)
        ping(board, webhook)  # the board may ping an inactive endpoint
        run_worker()

    assert len(receiver.requests) == 1
    webhook.refresh_from_db()
    assert (webhook.active, webhook.disabled_reason) == (False, "")
    assert disabled_rows(webhook) == []


# -- a receiver that never answers -----------------------------------------------------------------


@contextmanager
def silent_receiver() -> Iterator[str]:
    """A URL on 127.0.0.1 whose server accepts connections, reads nothing and never answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        server.close()


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_never_answers_fails_within_the_timeout_and_the_next_delivery_goes(
    board, company, settings
):
    settings.PAPERCLIP_WEBHOOK_TIMEOUT_SECONDS = 1
    with silent_receiver() as silent_url, running_receiver() as receiver:
        stuck = make_webhook(company, silent_url)
        fine = make_webhook(company, receiver.url)
        ping(board, stuck)
        ping(board, fine)
        started = time.monotonic()
        run_worker()
        elapsed = time.monotonic() - started

    hung = WebhookDelivery.objects.get(endpoint=stuck)
    assert (hung.status, hung.response_status, hung.error) == ("failed", None, "timed out")
    assert 900 <= hung.duration_ms < 3000
    assert elapsed < 5
    [request] = receiver.requests
    assert request.headers["webhook-id"] == WebhookDelivery.objects.get(endpoint=fine).event_id
    assert WebhookDelivery.objects.get(endpoint=fine).status == "succeeded"


def test_the_webhook_timeout_is_ten_seconds_unless_configured():
    from django.conf import settings

    assert settings.PAPERCLIP_WEBHOOK_TIMEOUT_SECONDS == 10


# -- at-least-once: an attempt lost with its worker --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_attempt_lost_with_a_killed_worker_is_sent_again_by_the_sweep(company):
    """A worker killed -9 mid-attempt leaves its task `running` forever and the attempt
    `pending`: `manage.py dispatch_events` queues overdue attempts again (same webhook-id), and
    leaves alone one that is merely waiting for its time."""
    from io import StringIO

    from django.core.management import call_command
    from django_tasks_db.models import DBTaskResult

    with running_receiver() as receiver:
        webhook = make_webhook(company, receiver.url)
        lost = logged(webhook, "pending", hours_ago=0.2)  # 12 minutes ago, its task gone
        recent = logged(webhook, "pending", hours_ago=0.01)  # still within its time
        DBTaskResult.objects.all().delete()

        out = StringIO()
        call_command("dispatch_events", "--json", stdout=out)
        run_worker()

    assert out.getvalue().strip() == '{"dispatched": 0, "requeued": 1}'
    lost.refresh_from_db()
    recent.refresh_from_db()
    assert (lost.status, recent.status) == ("succeeded", "pending")
    [request] = receiver.requests
    assert request.headers["webhook-id"] == lost.event_id
