"""Files on an issue, kept in the configured storage (DESIGN §6)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from agents.models import Agent
from companies.models import Company
from issues.models.comments import Comment
from issues.models.issue import Issue
from paperclip.ids import PrefixedIdField
from paperclip.tenancy import CompanyScopedQuerySet


class Attachment(models.Model):
    """A file on an issue, kept in the configured storage (file system or S3-compatible)."""

    id = PrefixedIdField(prefix="att")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="attachments")
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="attachments")
    comment = models.ForeignKey(
        Comment, null=True, blank=True, on_delete=models.SET_NULL, related_name="attachments"
    )
    file = models.FileField(max_length=500)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    byte_size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_by_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CompanyScopedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.original_name
