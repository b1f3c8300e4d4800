"""Documents on an issue, with append-only revisions (DESIGN §6)."""

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

DOCUMENT_KEY = r"^[a-z0-9][a-z0-9_-]*$"
DOCUMENT_KEY_MAX = 64
DOCUMENT_BODY_MAX = 512 * 1024


class Document(OneClockTimestamps, models.Model):
    """A keyed, revisioned text artifact of an issue (`plan`, `design`, `notes`, ...)."""

    class Format(models.TextChoices):
        MARKDOWN = "markdown"

    id = PrefixedIdField(prefix="doc")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="documents")
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="documents")
    key = models.CharField(max_length=DOCUMENT_KEY_MAX)
    title = models.CharField(max_length=300, blank=True, default="")
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.MARKDOWN)
    body = models.TextField(blank=True, default="")
    # The revision an update must name as its base (optimistic concurrency).
    latest_revision = models.ForeignKey(
        "DocumentRevision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CompanyScopedQuerySet.as_manager()

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["issue", "key"], name="document_key_per_issue")
        ]

    def __str__(self) -> str:
        return f"{self.issue_id}/{self.key}"


class DocumentRevision(models.Model):
    """Append-only: every PUT adds one; the document shows the newest."""

    id = PrefixedIdField(prefix="rev")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=300, blank=True, default="")
    body = models.TextField(blank=True, default="")
    change_summary = models.CharField(max_length=500, blank=True, default="")
    author_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run_id = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["document", "number"], name="revision_number_per_doc")
        ]

    def __str__(self) -> str:
        return f"{self.document} r{self.number}"
