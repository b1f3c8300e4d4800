"""Reads of issues that carry a rule of their own (who may ask), next to the queryset."""

from __future__ import annotations

from types import SimpleNamespace

from django.db.models import QuerySet

from agents.models import HeartbeatRun
from issues.models import Issue, Status
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
RUN_COLUMNS = ("id", "agent_id", "status", "lease_expires_at")


def inbox_rows(issues: QuerySet[Issue], *, limit: int) -> list[SimpleNamespace]:
    """The first `limit` of `issues` as rows of what an inbox item shows (no issue instance per
    row), each with the run holding it (`checkout_run`, a run instance: whether it is live is
    the run's to say) or None."""
    runs = [f"checkout_run__{column}" for column in RUN_COLUMNS]
    rows = []
    for values in issues.values(*INBOX_COLUMNS, *runs)[:limit]:
        run = {column: values.pop(f"checkout_run__{column}") for column in RUN_COLUMNS}
        holder = HeartbeatRun(**run) if run["id"] else None
        rows.append(SimpleNamespace(**values, checkout_run=holder))
    return rows
