"""What organises issues: goals, projects and labels."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from agents.models import Agent
from companies.models import Company
from paperclip.ids import PrefixedIdField
from paperclip.tenancy import CompanyScopedQuerySet, unique_name_per_company
from paperclip.timestamps import OneClockTimestamps


class Goal(OneClockTimestamps, models.Model):
    class Level(models.TextChoices):
        COMPANY = "company"
        TEAM = "team"
        AGENT = "agent"
        TASK = "task"

    class Status(models.TextChoices):
        PLANNED = "planned"
        ACTIVE = "active"
        ACHIEVED = "achieved"
        CANCELLED = "cancelled"

    id = PrefixedIdField(prefix="gol")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="goals")
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True, default="")
    level = models.CharField(max_length=16, choices=Level.choices, default=Level.TASK)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    owner_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_goals"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CompanyScopedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.title


class Project(OneClockTimestamps, models.Model):
    # Paperclip's vocabulary (DESIGN §5). Pausing is not a status: `paused_at` says a project is
    # paused whatever its status, so resuming gives back the status it had.
    class Status(models.TextChoices):
        BACKLOG = "backlog"
        PLANNED = "planned"
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"
        CANCELLED = "cancelled"

    # Why a project is paused when the board gives no reason (Paperclip's PAUSE_REASONS).
    MANUAL_PAUSE = "manual"

    id = PrefixedIdField(prefix="prj")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.BACKLOG)
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    pause_reason = models.CharField(max_length=500, blank=True, default="", editable=False)
    goals = models.ManyToManyField(Goal, blank=True, related_name="projects")
    lead_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="led_projects"
    )
    target_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CompanyScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None


class Label(models.Model):
    id = PrefixedIdField(prefix="lbl")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=64)
    color = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CompanyScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [unique_name_per_company("label")]

    def __str__(self) -> str:
        return self.name
