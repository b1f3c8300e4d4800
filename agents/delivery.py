"""Delivering wakes to HTTP agents: a background task, signed the Standard Webhooks way,
retried with exponential backoff, every attempt recorded."""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import socket
import ssl
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.utils import timezone
from django_tasks import task, task_backends
from standardwebhooks.webhooks import Webhook

from agents.models import HeartbeatRun, WakeDelivery
from agents.runs import mint_run_token
from paperclip.api.wire import to_wire, wire_id
from paperclip.targets import Target, TargetRefused, TargetUnresolved, check_target_url

EVENT_TYPE = "agent.wake"


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


INVALID_URL = "Enter a valid http(s) URL."


def check_wake_url(url: Any) -> None:
    """An `adapterConfig.url` we can store and POST wakes to, or `TargetRefused` saying why not
    (details `{"url": [...]}`): a well-formed http(s) URL that fits the delivery log, at an
    address the target rules allow (checked again, resolved, at each delivery)."""
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


def _post(target: Target, body: str, headers: dict[str, str]) -> int:
    """POST to a checked target; redirects are not followed (one could point anywhere)."""
    parts = urlsplit(target.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, settings.PAPERCLIP_WAKE_TIMEOUT_SECONDS)
    try:
        connection.request("POST", path, body=body.encode(), headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def _retry_later(run_id: str, attempt: int) -> None:
    delay = settings.PAPERCLIP_WAKE_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    backend = task_backends[deliver_wake.backend]
    if backend.supports_defer and delay > 0:
        deliver_wake.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue(
            run_id, attempt + 1
        )
    else:
        deliver_wake.enqueue(run_id, attempt + 1)


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
    body = json.dumps(wake_payload(run), separators=(",", ":"))
    # One id per wake, the same on every retry: receivers drop duplicates by it.
    message_id = wire_id(run.pk)
    headers = {"Content-Type": "application/json", "User-Agent": "paperclip-django"}
    if run.agent.webhook_secret:
        now = timezone.now()
        headers |= {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(run.agent.webhook_secret).sign(message_id, now, body),
        }
    started = time.monotonic()
    status_code, error, refused = None, "", False
    try:
        # Checked again on the addresses the name resolves to now (DESIGN §9); a refused
        # target is one failed attempt with nothing sent, and is not retried.
        status_code = _post(check_target_url(url, resolve=True), body, headers)
    except TargetUnresolved as exc:
        error = exc.reason
    except TargetRefused as exc:
        error, refused = f"Target refused, nothing sent: {exc.reason}", True
    except (OSError, http.client.HTTPException, ValueError) as exc:
        error = str(exc) or type(exc).__name__
    succeeded = status_code is not None and 200 <= status_code < 300
    if status_code is not None and not succeeded:
        error = f"HTTP {status_code}"
    WakeDelivery.objects.create(
        run=run,
        attempt=attempt,
        url=url,
        status_code=status_code,
        error=error,
        succeeded=succeeded,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    if not succeeded and not refused and attempt < settings.PAPERCLIP_WAKE_MAX_ATTEMPTS:
        _retry_later(run_id, attempt)
    return succeeded
