"""Reads of issues that carry a rule of their own (who may ask), next to the queryset."""

from __future__ import annotations

from types import SimpleNamespace

from django.db.models import QuerySet

from issues.models import Issue, Status
from issues.models.issue import HOLDER_COLUMNS, pop_holder
from paperclip.actors import Actor
from paperclip.errors import NotAllowed

INBOX_STATUSES = (Status.TODO, Status.IN_PROGRESS, Status.BLOCKED)


def inbox_lite(actor: Actor) -> QuerySet[Issue]:
    """An agent's open work in the order to do it: todo, in_progress and blocked issues assigned
    to it, by priority then most recently updated. Board users have no inbox (403)."""
    if not actor.is_agent:
        raise NotAllowed("Only agents have an inbox; board users list issues")
    return (
        Issue.objects.visible_to(actor)
        .filter(assignee_agent=actor.agent, status__in=INBOX_STATUSES)
        .visible_on_board()
        .order_by("priority", "-updated_at", "-id")
    )


INBOX_COLUMNS = ("id", "identifier", "title", "status", "priority", "parent_id", "project_id",
                 "goal_id", "updated_at")  # fmt: skip


def inbox_rows(issues: QuerySet[Issue], *, limit: int) -> list[SimpleNamespace]:
    """The first `limit` of `issues` as rows of what an inbox item shows (no issue instance per
    row), each with the run holding it (`checkout_run`: a run instance, since whether it is live
    is the run's to say) or None."""
    holder = [f"checkout_run__{column}" for column in HOLDER_COLUMNS]
    return [
        SimpleNamespace(**values, checkout_run=pop_holder(values))
        for values in issues.values(*INBOX_COLUMNS, *holder)[:limit]
    ]
