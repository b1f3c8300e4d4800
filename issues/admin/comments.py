"""Comments in the admin: a log to search (by issue identifier or text). They are read on the
issue page and added with its "Add a comment" field, through the service."""

from __future__ import annotations

from django.contrib import admin

from companies.admin import CompanyScopedAdmin, ReadOnlyAdmin
from issues.models import Comment


@admin.register(Comment)
class CommentAdmin(CompanyScopedAdmin, ReadOnlyAdmin):
    list_display = ("id", "issue", "author_agent", "author_user", "created_at")
    search_fields = ("issue__identifier", "body")
    list_select_related = ("issue", "author_agent", "author_user")
