from __future__ import annotations

import django_filters

from companies.models import ActivityEvent
from paperclip.api.filters import IdFilter


class ActivityFilter(django_filters.FilterSet):
    agentId = IdFilter(field_name="actor_id", prefix="agt", help_text="Rows by this agent")
    entityType = django_filters.CharFilter(field_name="entity_type")
    entityId = IdFilter(field_name="entity_id", prefix=None)

    class Meta:
        model = ActivityEvent
        fields: list[str] = []
