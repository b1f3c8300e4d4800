"""An agent's inbox: its open work, in the order to do it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from issues import selectors
from issues.models import (
    Issue,
    Priority,
)
from paperclip.api.pagination import MAX_LIMIT
from paperclip.api.serializers import (
    CamelModelSerializer,
    LabelChoiceField,
    PlannedRepresentationMixin,
)
from paperclip.api.viewsets import ScopedViewSet

DATETIME = serializers.DateTimeField()


class InboxItemSerializer(PlannedRepresentationMixin, CamelModelSerializer):
    """A compact issue for an agent's inbox, with the run working on it (if live)."""

    priority = LabelChoiceField(Priority)
    active_run = serializers.SerializerMethodField()

    class Meta:
        model = Issue
        fields = [
            "id",
            "identifier",
            "title",
            "status",
            "priority",
            "parent_id",
            "project_id",
            "goal_id",
            "updated_at",
            "active_run",
        ]
        read_only_fields = fields

    def get_active_run(self, issue: Issue) -> dict | None:
        run = issue.checkout_run
        if run is None or not run.is_live:
            return None
        # A plain dict: a serializer per row would rebuild its fields for every issue.
        return {
            "id": run.pk,
            "agentId": run.agent_id,
            "status": run.status,
            "leaseExpiresAt": DATETIME.to_representation(run.lease_expires_at),
            "isLive": True,
        }


class InboxViewSet(ScopedViewSet):
    """An agent's open work, in the order to do it."""

    queryset = Issue.objects.all()

    @extend_schema(responses=InboxItemSerializer(many=True))
    def inbox_lite(self, request):
        """todo, in_progress and blocked issues assigned to the caller, by priority."""
        # Its ETag stays the hash of the body: an item shows whether the run holding it is
        # live, which changes with time alone, so no row version can stand for it.
        rows = selectors.inbox_rows(selectors.inbox_lite(self.actor), limit=MAX_LIMIT)
        return Response(InboxItemSerializer(rows, many=True).data)
