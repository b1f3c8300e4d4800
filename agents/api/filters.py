from __future__ import annotations

import django_filters

from agents.models import HeartbeatRun


class HeartbeatRunFilter(django_filters.FilterSet):
    agentId = django_filters.CharFilter(field_name="agent_id")
    status = django_filters.ChoiceFilter(choices=HeartbeatRun.Status.choices)
    issueId = django_filters.CharFilter(field_name="issue_id")

    class Meta:
        model = HeartbeatRun
        fields: list[str] = []
