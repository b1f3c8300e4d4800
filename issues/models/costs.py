"""What the work cost (DESIGN §10): one append-only row per reported cost, the one source of every
spend figure (a task's `spent`, a run's `cost`, the roll-ups and the budgets)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import models
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from agents.models import Agent, HeartbeatRun, this_month
from companies.models import Company
from paperclip.ids import PrefixedIdField


class CostEventQuerySet(models.QuerySet):
    def between(self, start: datetime | None, end: datetime | None):
        """Costs that occurred in [start, end); either side open when None."""
        rows = self
        if start is not None:
            rows = rows.filter(occurred_at__gte=start)
        if end is not None:
            rows = rows.filter(occurred_at__lt=end)
        return rows

    def this_month(self):
        return self.between(*this_month())

    def cents(self) -> Decimal:
        """The sum of their cost, in cents (0 for none)."""
        return self.aggregate(total=Coalesce(Sum("cost_cents"), Decimal(0)))["total"]


class CostEvent(models.Model):
    """One reported cost: by an agent (`POST .../cost-events`) or a run's finish with `usage`.
    Never changed or deleted once written. `cost_cents` keeps fractions of a cent (a run may report
    `costUsd: 0.0042`); `project` is the issue's project when it was reported, so moving an issue
    later does not move its history."""

    id = PrefixedIdField(prefix="cst")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="cost_events")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="cost_events")
    issue = models.ForeignKey(
        "issues.Issue", null=True, blank=True, on_delete=models.SET_NULL, related_name="costs"
    )
    project = models.ForeignKey(
        "issues.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="costs"
    )
    heartbeat_run = models.ForeignKey(
        HeartbeatRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="costs"
    )
    provider = models.CharField(max_length=100)
    model = models.CharField(max_length=200)
    input_tokens = models.PositiveBigIntegerField(default=0)
    cached_input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost_cents = models.DecimalField(max_digits=16, decimal_places=4)
    billing_code = models.CharField(max_length=100, blank=True, default="")
    occurred_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CostEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # The budget checks and roll-ups: a scope's spend over a window of time.
            models.Index(fields=["company", "occurred_at"], name="cost_company_time"),
            models.Index(fields=["agent", "occurred_at"], name="cost_agent_time"),
            models.Index(fields=["issue", "occurred_at"], name="cost_issue_time"),
            models.Index(fields=["heartbeat_run"], name="cost_run"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(cost_cents__gte=0), name="cost_not_negative")
        ]

    def __str__(self) -> str:
        return f"{self.cost_cents}¢ {self.provider}/{self.model}"
