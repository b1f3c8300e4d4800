"""Approvals: decisions the board makes for agents (DESIGN §6)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from agents.models import Agent
from companies.models import Company
from issues.models.issue import Issue
from paperclip.ids import PrefixedIdField
from paperclip.tenancy import CompanyScopedQuerySet
from paperclip.timestamps import OneClockTimestamps


class Approval(OneClockTimestamps, ConcurrentTransitionMixin, models.Model):
    """A decision the board makes for an agent (hire, strategy, budget), guarded like issues."""

    class Type(models.TextChoices):
        HIRE_AGENT = "hire_agent"
        APPROVE_CEO_STRATEGY = "approve_ceo_strategy"
        BUDGET_OVERRIDE_REQUIRED = "budget_override_required"
        # A plain yes/no from the board: no side effect beyond waking the requester.
        REQUEST_BOARD_APPROVAL = "request_board_approval"

    class Status(models.TextChoices):
        PENDING = "pending"
        REVISION_REQUESTED = "revision_requested"
        APPROVED = "approved"
        REJECTED = "rejected"
        CANCELLED = "cancelled"

    id = PrefixedIdField(prefix="apr")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="approvals")
    type = models.CharField(max_length=32, choices=Type.choices)
    status = FSMField(max_length=32, choices=Status.choices, default=Status.PENDING, protected=True)
    payload = models.JSONField(default=dict, blank=True)
    issues = models.ManyToManyField(Issue, blank=True, related_name="approvals")
    requested_by_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="approvals"
    )
    requested_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_note = models.TextField(blank=True, default="")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CompanyScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["company", "status"], name="approval_company_status")]

    def __str__(self) -> str:
        return f"{self.type} ({self.status})"

    def _decide(self) -> None:
        self.decided_at = timezone.now()

    @transition(field=status, source=Status.PENDING, target=Status.APPROVED)
    def approve(self) -> None:
        """The board says yes: sets decided_at; the service wakes the requester."""
        self._decide()

    @transition(field=status, source=Status.PENDING, target=Status.REJECTED)
    def reject(self) -> None:
        """The board says no: sets decided_at. Final."""
        self._decide()

    @transition(field=status, source=Status.PENDING, target=Status.REVISION_REQUESTED)
    def request_revision(self) -> None:
        """The board asks the requester to change the request and resubmit."""
        self._decide()

    @transition(field=status, source=Status.REVISION_REQUESTED, target=Status.PENDING)
    def resubmit(self) -> None:
        """The requester sends the revised request back; the previous decision is cleared."""
        self.decided_at = None
        self.decided_by_user = None
        self.decision_note = ""

    @transition(
        field=status,
        source=[Status.PENDING, Status.REVISION_REQUESTED],
        target=Status.CANCELLED,
    )
    def cancel(self) -> None:
        """Withdrawn before a decision."""


class ApprovalComment(models.Model):
    id = PrefixedIdField(prefix="cmt")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    approval = models.ForeignKey(Approval, on_delete=models.CASCADE, related_name="comments")
    author_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CompanyScopedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.id} on {self.approval_id}"
