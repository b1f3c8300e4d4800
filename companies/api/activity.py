"""The append-only activity log, newest first."""

from __future__ import annotations

from companies.api.filters import ActivityFilter
from companies.models import ActivityEvent
from paperclip.api.serializers import CamelModelSerializer
from paperclip.api.viewsets import ScopedViewSet


class ActivitySerializer(CamelModelSerializer):
    class Meta:
        model = ActivityEvent
        fields = [
            "id",
            "company_id",
            "actor_type",
            "actor_id",
            "run_id",
            "action",
            "entity_type",
            "entity_id",
            "issue_id",
            "details",
            "created_at",
        ]
        read_only_fields = fields


class ActivityViewSet(ScopedViewSet):
    """The append-only log, newest first."""

    queryset = ActivityEvent.objects.all()
    serializer_class = ActivitySerializer
    filterset_class = ActivityFilter

    def list(self, request, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ActivitySerializer(page, many=True).data)
