from __future__ import annotations

import django_filters

from agents.models import HeartbeatRun
from paperclip.api.filters import IdFilter


class HeartbeatRunFilter(django_filters.FilterSet):
    agentId = IdFilter(field_name="agent_id", prefix="agt")
    status = django_filters.ChoiceFilter(choices=HeartbeatRun.Status.choices)
    issueId = IdFilter(field_name="issue_id", prefix="iss")

    class Meta:
        model = HeartbeatRun
        fields: list[str] = []
