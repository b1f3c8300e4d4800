"""Query filters for issue lists (camelCase, as Paperclip clients send them)."""

from __future__ import annotations

import django_filters
from django.db.models import Q
from rest_framework.exceptions import ValidationError

from issues.models import Issue, Status
from paperclip.api.filters import IdFilter
from paperclip.ids import parse_id


class IssueFilter(django_filters.FilterSet):
    status = django_filters.CharFilter(method="filter_status", help_text="Comma list: todo,blocked")
    assigneeAgentId = django_filters.CharFilter(
        method="filter_assignee_agent", help_text="An agent id, or `null` for unassigned"
    )
    assigneeUserId = IdFilter(field_name="assignee_user_id", prefix="usr")
    projectId = IdFilter(field_name="project_id", prefix="prj")
    goalId = IdFilter(field_name="goal_id", prefix="gol")
    teamId = IdFilter(field_name="team_id", prefix="tm")
    parentId = django_filters.CharFilter(
        method="filter_parent", help_text="An issue id, or `null` for top-level issues"
    )
    labelId = IdFilter(field_name="labels__id", prefix="lbl")
    q = django_filters.CharFilter(
        method="filter_search", help_text="Title, identifier, description"
    )

    class Meta:
        model = Issue
        fields: list[str] = []

    def filter_status(self, queryset, name, value):
        statuses = [s.strip() for s in value.split(",") if s.strip()]
        unknown = [s for s in statuses if s not in Status.values]
        if unknown:
            raise ValidationError({"status": [f"Unknown status: {', '.join(unknown)}"]})
        return queryset.filter(status__in=statuses)

    def filter_assignee_agent(self, queryset, name, value):
        if value == "null":
            return queryset.filter(assignee_agent__isnull=True)
        pk = parse_id(value, "agt")  # a malformed id names no agent (never "unassigned")
        return queryset.filter(assignee_agent_id=pk) if pk else queryset.none()

    def filter_parent(self, queryset, name, value):
        if value == "null":
            return queryset.filter(parent__isnull=True)
        pk = parse_id(value, "iss")
        by_identifier = Q(parent__identifier=value.upper())
        return queryset.filter(Q(parent_id=pk) | by_identifier if pk else by_identifier)

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(title__icontains=value)
            | Q(identifier__iexact=value)
            | Q(description__icontains=value)
        )
