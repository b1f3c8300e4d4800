from __future__ import annotations

import django_filters

from companies.models import ActivityEvent


class ActivityFilter(django_filters.FilterSet):
    agentId = django_filters.CharFilter(method="filter_agent", help_text="Rows by this agent")
    entityType = django_filters.CharFilter(field_name="entity_type")
    entityId = django_filters.CharFilter(field_name="entity_id")

    class Meta:
        model = ActivityEvent
        fields: list[str] = []

    def filter_agent(self, queryset, name, value):
        return queryset.filter(actor_type="agent", actor_id=value)
