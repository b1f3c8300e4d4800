"""Comments in the admin: a log to search (by issue identifier or text). They are read in the
issue page's thread and added with its comment box, through the service."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from companies.admin import CompanyScopedAdmin, ReadOnlyAdmin, author_of, titled
from issues.markdown import render_markdown
from issues.models import Comment
from paperclip.board import moment_html


@admin.register(Comment)
class CommentAdmin(CompanyScopedAdmin, ReadOnlyAdmin):
    list_display = ("excerpt", "issue_link", "author", "when")
    search_fields = ("issue__identifier", "body")
    list_select_related = ("issue", "author_agent", "author_user")
    fields = ("issue_link", "author", "when", "rendered")
    readonly_fields = fields

    def get_queryset(self, request):
        # The page's title names the issue and the author: read with the comment.
        return super().get_queryset(request).select_related("issue", "author_agent", "author_user")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        titled(context, obj, obj and f"Comment by {author_of(obj)} on {obj.issue.identifier}")
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="comment")
    def excerpt(self, comment: Comment) -> str:
        return Truncator(comment.body).chars(80)

    @admin.display(description="issue", ordering="issue__identifier")
    def issue_link(self, comment: Comment) -> str:
        return format_html(
            '<a href="{}" title="{}" class="text-primary-600 underline dark:text-primary-500">'
            "{}</a>",
            reverse("admin:issues_issue_change", args=[quote(comment.issue_id)]),
            comment.issue.title,
            comment.issue.identifier,
        )

    @admin.display(description="author")
    def author(self, comment: Comment):
        return author_of(comment)

    @admin.display(description="when", ordering="created_at")
    def when(self, comment: Comment) -> str:
        return moment_html(comment.created_at)

    @admin.display(description="body")
    def rendered(self, comment: Comment):
        return render_markdown(comment.body)
