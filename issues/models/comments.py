"""Comments: the thread on an issue."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from agents.models import Agent
from companies.models import Company
from issues.models.issue import Issue
from paperclip.ids import PrefixedIdField
from paperclip.tenancy import CompanyScopedQuerySet
from paperclip.timestamps import OneClockTimestamps


class Comment(OneClockTimestamps, models.Model):
    id = PrefixedIdField(prefix="cmt")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="comments")
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="comments")
    author_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="comments"
    )
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="comments",
    )
    body = models.TextField()
    run_id = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CompanyScopedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # GET /api/issues/{id}/comments, paged by (created_at, id) either way
            models.Index(fields=["issue", "created_at", "id"], name="comment_issue_time"),
        ]

    def __str__(self) -> str:
        return f"{self.id} on {self.issue_id}"
