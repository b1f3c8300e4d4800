"""Delivering wakes to HTTP agents and events to webhook endpoints: background tasks, signed
the Standard Webhooks way through one sending path (`send_signed`), retried with backoff, every
attempt recorded (`WakeDelivery`, `WebhookDelivery`)."""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone
from django_tasks import task, task_backends
from standardwebhooks.webhooks import Webhook

from agents.models import HeartbeatRun, WakeDelivery, WebhookDelivery, WebhookEndpoint
from agents.runs import mint_run_token
from companies.services import log_change
from paperclip.actors import SYSTEM
from paperclip.api.wire import to_wire, wire_id
from paperclip.targets import Target, TargetRefused, TargetUnresolved, check_target_url

EVENT_TYPE = "agent.wake"


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


INVALID_URL = "Enter a valid http(s) URL."


def check_delivery_url(url: Any) -> None:
    """A URL we can store and POST to (an `http` agent's `adapterConfig.url`, a webhook
    endpoint's `url`), or `TargetRefused` saying why not (details `{"url": [...]}`): a
    well-formed http(s) URL that fits the delivery log, at an address the target rules allow
    (checked again, resolved, at each delivery)."""
    if not isinstance(url, str) or len(url) > WakeDelivery._meta.get_field("url").max_length:
        raise TargetRefused(INVALID_URL)
    try:
        URLValidator(schemes=["http", "https"])(url)
    except DjangoValidationError:
        raise TargetRefused(INVALID_URL) from None
    check_target_url(url, resolve=False)


def wake_payload(run: HeartbeatRun) -> dict[str, Any]:
    """What an agent is told when woken: enough to start its heartbeat without a lookup. Paperclip's
    dialect, so its ids are UUIDs as on `/api`."""
    context = run.context or {}
    return to_wire(
        {
            "type": EVENT_TYPE,
            "runId": run.pk,
            "runToken": mint_run_token(run),
            "agentId": run.agent_id,
            "companyId": run.company_id,
            "taskId": context.get("taskId"),
            "wakeReason": run.wake_reason,
            "wakeCommentId": context.get("commentId"),
            "approvalId": context.get("approvalId"),
            "approvalStatus": context.get("approvalStatus"),
            "linkedIssueIds": context.get("linkedIssueIds", []),
            "apiUrl": settings.PAPERCLIP_API_URL,
        }
    )


def _connect(target: Target, timeout: float) -> socket.socket:
    """A socket to the first checked address that answers (never a second DNS lookup)."""
    error: OSError = OSError(f"no address for {target.host}")
    for address in target.addresses:
        try:
            return socket.create_connection((address, target.port), timeout)
        except OSError as exc:
            error = exc
    raise error


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Speaks to `target.host` (Host header) at the address `check_target_url` checked."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.target = target

    def connect(self) -> None:
        self.sock = _connect(self.target, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As `_PinnedHTTPConnection`, with TLS verified against the host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
        self.target = target

    def connect(self) -> None:
        sock = _connect(self.target, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


RESPONSE_BODY_LIMIT = 4096  # what the delivery log keeps of a receiver's answer (DESIGN §9)


def _post(target: Target, body: str, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    """POST to a checked target: the answer's status and the start of its body. Redirects are
    not followed (one could point anywhere). `timeout` bounds the connect and each read."""
    parts = urlsplit(target.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout)
    try:
        connection.request("POST", path, body=body.encode(), headers=headers)
        response = connection.getresponse()
        answer = response.read(RESPONSE_BODY_LIMIT)
        return response.status, answer.decode("utf-8", errors="replace")
    finally:
        connection.close()


@dataclass(frozen=True)
class Attempt:
    """What one signed POST came to. `refused`: the target rules refused the URL, nothing was
    sent, and retrying will not help."""

    status_code: int | None
    response_body: str
    error: str
    refused: bool
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def send_signed(
    url: str,
    *,
    message_id: str,
    payload: dict[str, Any],
    secret: str,
    timeout: float | None = None,
) -> Attempt:
    """POST `payload` as JSON to `url`, signed the Standard Webhooks way with `secret` (unsigned
    when there is none): the one sending path of wakes and webhooks. `message_id` is the
    `webhook-id` header, the same on every retry of one message so receivers drop duplicates.

    The URL is checked again on the addresses its name resolves to now (DESIGN §9) and the
    connection goes to a checked address; a 2xx within the timeout is success (`timeout`
    seconds for the connect and for each read; the wake timeout unless given). Never raises for
    what happens on the wire: the attempt says it.
    """
    if timeout is None:
        timeout = settings.PAPERCLIP_WAKE_TIMEOUT_SECONDS
    body = json.dumps(payload, separators=(",", ":"))
    headers = {"Content-Type": "application/json", "User-Agent": "paperclip-django"}
    if secret:
        now = timezone.now()
        headers |= {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, now, body),
        }
    started = time.monotonic()
    status_code, response_body, error, refused = None, "", "", False
    try:
        target = check_target_url(url, resolve=True)
        status_code, response_body = _post(target, body, headers, timeout)
    except TargetUnresolved as exc:
        error = exc.reason
    except TargetRefused as exc:
        error, refused = f"Target refused, nothing sent: {exc.reason}", True
    except (OSError, http.client.HTTPException, ValueError) as exc:
        error = str(exc) or type(exc).__name__
    if status_code is not None and not 200 <= status_code < 300:
        error = f"HTTP {status_code}"
    return Attempt(
        status_code=status_code,
        response_body=response_body,
        error=error,
        refused=refused,
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def _enqueue_at(delivery_task, due: datetime, *args: Any) -> None:
    """Queue a delivery to run at `due`, or now on a backend that cannot defer."""
    backend = task_backends[delivery_task.backend]
    if backend.supports_defer and due > timezone.now():
        delivery_task.using(run_after=due).enqueue(*args)
    else:
        delivery_task.enqueue(*args)


def _retry_later(run_id: str, attempt: int) -> None:
    delay = settings.PAPERCLIP_WAKE_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    _enqueue_at(deliver_wake, timezone.now() + timedelta(seconds=delay), run_id, attempt + 1)


@task()
def deliver_wake(run_id: str, attempt: int) -> bool:
    """POST the wake to the agent's `adapterConfig.url`; retry on failure, record each attempt.

    Stops when the run is no longer queued (it started, finished or was cancelled meanwhile).
    """
    run = HeartbeatRun.objects.select_related("agent").filter(pk=run_id).first()
    if run is None or run.status != HeartbeatRun.Status.QUEUED:
        return False
    url = (run.agent.adapter_config or {}).get("url")
    if not url:
        return False
    # One id per wake, the same on every retry: receivers drop duplicates by it.
    sent = send_signed(
        url, message_id=wire_id(run.pk), payload=wake_payload(run), secret=run.agent.webhook_secret
    )
    WakeDelivery.objects.create(
        run=run,
        attempt=attempt,
        url=url,
        status_code=sent.status_code,
        error=sent.error,
        succeeded=sent.succeeded,
        duration_ms=sent.duration_ms,
    )
    # A refused target is one failed attempt with nothing sent, and is not retried.
    if not sent.succeeded and not sent.refused and attempt < settings.PAPERCLIP_WAKE_MAX_ATTEMPTS:
        _retry_later(run_id, attempt)
    return sent.succeeded


# Seconds before each retry of a webhook delivery (DESIGN §9): about a day, then it has failed.
WEBHOOK_RETRY_DELAYS: tuple[int, ...] = (
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    14 * 3600,
)


def queue_attempt(
    endpoint: WebhookEndpoint,
    *,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    attempt: int = 1,
    due: datetime | None = None,
) -> WebhookDelivery:
    """One pending attempt of an event at an endpoint, logged and queued for the worker (at
    `due`, else as soon as the transaction commits): how every attempt is made, the first, a
    retry, a redelivery or a test ping."""
    delivery = WebhookDelivery.objects.create(
        company_id=endpoint.company_id,
        endpoint=endpoint,
        event_id=event_id,
        event_type=event_type,
        payload=payload,
        attempt=attempt,
        next_attempt_at=due,
    )
    queue_webhook_delivery(delivery)
    return delivery


def queue_webhook_delivery(delivery: WebhookDelivery) -> None:
    """Run a pending delivery once the transaction that wrote it commits (when it is due)."""
    due = delivery.next_attempt_at or delivery.created_at
    transaction.on_commit(lambda: _enqueue_at(deliver_webhook, due, delivery.pk))


# A pending attempt this long past its time was lost with its worker (killed mid-attempt, or
# its queued task gone). Well beyond what one attempt can take, so a live one is left alone.
OVERDUE_AFTER = timedelta(minutes=5)


def requeue_overdue_deliveries() -> int:
    """At-least-once (DESIGN §9): every pending attempt overdue by `OVERDUE_AFTER` is queued
    again, now. Its `webhook-id` is unchanged, so a receiver that got it before the worker died
    drops the duplicate. Answers how many were queued (`manage.py dispatch_events` runs it)."""
    cutoff = timezone.now() - OVERDUE_AFTER
    overdue = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).filter(
        Q(next_attempt_at__lt=cutoff) | Q(next_attempt_at__isnull=True, created_at__lt=cutoff)
    )
    ids = list(overdue.values_list("pk", flat=True))
    for delivery_id in ids:
        _enqueue_at(deliver_webhook, timezone.now(), delivery_id)
    return len(ids)


@task()
def deliver_webhook(delivery_id: str) -> bool:
    """Make one pending delivery attempt: POST its event to the endpoint, signed with the
    endpoint's secret (`webhook-id` = the event id), and settle the row. A failure that may pass
    is retried as a new pending row after the next delay of `WEBHOOK_RETRY_DELAYS`; a refused
    target is not retried. A failure that leaves the endpoint failing for a day disables it
    (`disable_if_failing_for_a_day`).

    Stops when the row is no longer pending (already settled) or its endpoint was deleted.
    """
    delivery = (
        WebhookDelivery.objects.select_related("endpoint")
        .filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
        .first()
    )
    if delivery is None:
        return False
    endpoint = delivery.endpoint
    sent = send_signed(
        endpoint.url,
        message_id=delivery.event_id,
        payload=delivery.payload,
        secret=endpoint.secret,
        timeout=settings.PAPERCLIP_WEBHOOK_TIMEOUT_SECONDS,
    )
    delivery.status = (
        WebhookDelivery.Status.SUCCEEDED if sent.succeeded else WebhookDelivery.Status.FAILED
    )
    delivery.response_status = sent.status_code
    delivery.response_body = sent.response_body
    delivery.error = sent.error
    delivery.duration_ms = sent.duration_ms
    delivery.next_attempt_at = None
    retry = not sent.succeeded and not sent.refused
    retry = retry and delivery.attempt <= len(WEBHOOK_RETRY_DELAYS)
    with transaction.atomic():
        if retry:
            delay = WEBHOOK_RETRY_DELAYS[delivery.attempt - 1]
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=delay)
            queue_attempt(
                endpoint,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                payload=delivery.payload,
                attempt=delivery.attempt + 1,
                due=delivery.next_attempt_at,
            )
        delivery.save()
        if not sent.succeeded:
            disable_if_failing_for_a_day(endpoint.pk)
    return sent.succeeded


FAILING_FOR = timedelta(hours=24)
DISABLED_REASON = "Every delivery failed for 24 hours"


def disable_if_failing_for_a_day(endpoint_id: str) -> bool:
    """Set an active endpoint inactive, with `DISABLED_REASON`, when every delivery to it has
    failed for 24 hours (DESIGN §9): its first failure since its last success (or ever) was
    queued at least `FAILING_FOR` ago. Logged as the system's `webhook.disabled`; the board's
    PATCH `active: true` re-enables it and clears the reason. Called by the worker after a
    failed attempt, inside the transaction that settled it; answers whether it disabled."""
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id, active=True)
    endpoint = endpoint.first()
    if endpoint is None:
        return False
    deliveries = endpoint.deliveries.all()
    last_success = deliveries.filter(status=WebhookDelivery.Status.SUCCEEDED).aggregate(
        at=Max("created_at")
    )["at"]
    failures = deliveries.filter(status=WebhookDelivery.Status.FAILED)
    if last_success is not None:
        failures = failures.filter(created_at__gt=last_success)
    first_failure = failures.aggregate(at=Min("created_at"))["at"]
    if first_failure is None or first_failure > timezone.now() - FAILING_FOR:
        return False
    endpoint.active = False
    endpoint.disabled_reason = DISABLED_REASON
    endpoint.save(update_fields=["active", "disabled_reason", "updated_at"])
    # Its waiting retries stop too: the board re-enables it, then redelivers what it wants.
    endpoint.deliveries.filter(status=WebhookDelivery.Status.PENDING).update(
        status=WebhookDelivery.Status.FAILED, error=f"Not sent: {DISABLED_REASON}"
    )
    log_change(
        SYSTEM,
        endpoint,
        "webhook.disabled",
        {"reason": DISABLED_REASON, "failingSince": first_failure.isoformat()},
    )
    return True
