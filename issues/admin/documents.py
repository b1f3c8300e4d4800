"""Documents in the admin: read here, written through the API (revisions are append-only).

A document's page lists its revisions, newest first, each linking to its diff against the one
before (the issue page's diff view); the issue page links to it.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils.text import Truncator

from companies.admin import CompanyScopedAdmin, ReadOnlyAdmin, ReadOnlyInline, author_of, titled
from issues.models import Document, DocumentRevision
from paperclip.board import value_link


class DocumentRevisionInline(ReadOnlyInline):
    model = DocumentRevision
    fields = ("number", "title", "change_summary", "author", "created_at", "excerpt", "diff")
    readonly_fields = fields
    ordering = ("-number",)

    def get_queryset(self, request):
        return (
            super().get_queryset(request).select_related("document", "author_agent", "author_user")
        )

    @admin.display(description="diff")
    def diff(self, revision: DocumentRevision):
        return value_link(
            reverse(
                "admin:issues_issue_revision_diff",
                args=[quote(revision.document.issue_id), quote(revision.pk)],
            ),
            "Against the previous" if revision.number > 1 else "View",
        )

    @admin.display(description="author")
    def author(self, revision: DocumentRevision):
        return author_of(revision)

    @admin.display(description="body")
    def excerpt(self, revision: DocumentRevision):
        return Truncator(revision.body).chars(300)


@admin.register(Document)
class DocumentAdmin(CompanyScopedAdmin, ReadOnlyAdmin):
    list_display = ("key", "issue", "title", "revision", "updated_at")
    search_fields = ("key", "title", "issue__identifier")
    list_select_related = ("issue", "latest_revision")
    fields = (
        "issue_link",
        "key",
        "title",
        "format",
        "revision",
        "body",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [DocumentRevisionInline]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        titled(context, obj, obj and f"{obj.issue.identifier} · {obj.key}")
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="issue")
    def issue_link(self, document: Document):
        return value_link(
            reverse("admin:issues_issue_change", args=[quote(document.issue_id)]),
            document.issue,
        )

    @admin.display(description="revision")
    def revision(self, document: Document):
        return document.latest_revision.number if document.latest_revision else "—"
