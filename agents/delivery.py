"""Delivering wakes to HTTP agents: a background task, signed the Standard Webhooks way,
retried with exponential backoff, every attempt recorded."""

from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django_tasks import task, task_backends
from standardwebhooks.webhooks import Webhook

from agents.models import HeartbeatRun, WakeDelivery
from agents.runs import mint_run_token

EVENT_TYPE = "agent.wake"


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def wake_payload(run: HeartbeatRun) -> dict[str, Any]:
    """What an agent is told when woken: enough to start its heartbeat without a lookup."""
    context = run.context or {}
    return {
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


def _post(url: str, body: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    timeout = settings.PAPERCLIP_WAKE_TIMEOUT_SECONDS
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status


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
    message_id = run.pk
    headers = {"Content-Type": "application/json", "User-Agent": "paperclip-django"}
    if run.agent.webhook_secret:
        now = timezone.now()
        headers |= {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(run.agent.webhook_secret).sign(message_id, now, body),
        }
    started = time.monotonic()
    status_code, error = None, ""
    try:
        status_code = _post(url, body, headers)
    except urllib.error.HTTPError as exc:
        status_code, error = exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = str(getattr(exc, "reason", exc))
    succeeded = status_code is not None and 200 <= status_code < 300
    WakeDelivery.objects.create(
        run=run,
        attempt=attempt,
        url=url,
        status_code=status_code,
        error=error,
        succeeded=succeeded,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    if not succeeded and attempt < settings.PAPERCLIP_WAKE_MAX_ATTEMPTS:
        _retry_later(run_id, attempt)
    return succeeded
