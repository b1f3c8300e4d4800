"""Reads of issues that carry a rule of their own (who may ask), next to the queryset."""

from __future__ import annotations

from django.db.models import QuerySet

from issues.models import Issue, Status
from paperclip.actors import Actor
from paperclip.errors import NotAllowed

INBOX_STATUSES = (Status.TODO, Status.IN_PROGRESS, Status.BLOCKED)


def inbox_lite(actor: Actor, *, limit: int) -> QuerySet[Issue]:
    """An agent's open work in the order to do it: todo, in_progress and blocked issues assigned
    to it, by priority then most recently updated. Board users have no inbox (403)."""
    if not actor.is_agent:
        raise NotAllowed("Only agents have an inbox; board users list issues")
    return (
        Issue.objects.visible_to(actor)
        .filter(assignee_agent=actor.agent, status__in=INBOX_STATUSES)
        .visible_on_board()
        .select_related("checkout_run")
        .order_by("priority", "-updated_at", "-id")[:limit]
    )
