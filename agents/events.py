"""The domain events a webhook endpoint may subscribe to (DESIGN §9): their names, in one place.

The ten of Reference 003 come first, then Paperclip's own, then `ping`, which only
`POST .../webhooks/{id}/test` sends. An endpoint subscribes by name, or to all with `["*"]`.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.conf import settings
from django.utils import timezone

from paperclip.actors import Actor
from paperclip.errors import validation_error
from paperclip.ids import new_id

PING = "ping"
ALL = "*"

EVENT_TYPES: tuple[str, ...] = (
    # Reference 003
    "issue.created",
    "issue.assigned",
    "issue.reassigned",
    "issue.started",
    "issue.progress",
    "issue.review",
    "issue.done",
    "issue.failed",
    "issue.cancelled",
    "issue.handoff",
    # Paperclip's
    "issue.updated",
    "issue.reopened",
    "issue.commented",
    "approval.created",
    "approval.decided",
    "agent.paused",
    "agent.resumed",
    "agent.terminated",
    "budget.breached",
    PING,
)


def clean_event_names(names: Any) -> list[str]:
    """The subscription as stored: known event names, each once, in the order given; or `["*"]`
    alone. Anything else is a 400 naming `events`."""
    if not isinstance(names, list) or not names:
        raise validation_error("events", 'A non-empty list of event names, or ["*"].')
    if ALL in names:
        if len(names) != 1:
            raise validation_error("events", '"*" subscribes to every event; send it alone.')
        return [ALL]
    unknown = [name for name in names if name not in EVENT_TYPES]
    if unknown:
        shown = ", ".join(repr(name) if isinstance(name, str) else str(name) for name in unknown)
        raise validation_error("events", f"Unknown event names: {shown}.")
    return list(dict.fromkeys(names))


def event_envelope(
    *, event_type: str, company_id: str, actor: Actor, data: dict[str, Any]
) -> dict[str, Any]:
    """An event as a webhook receives it (DESIGN §9), with a new `evt_` id. Ids are in the `/v1`
    (prefixed) form, whichever dialect caused the event."""
    return {
        "id": new_id("evt"),
        "type": event_type,
        "createdAt": timezone.now()
        .astimezone(UTC)
        .strftime(settings.REST_FRAMEWORK["DATETIME_FORMAT"]),
        "companyId": company_id,
        "actor": {"type": actor.type, "id": actor.id},
        "runId": actor.run_id,
        "data": data,
    }
