"""The company dashboard (DESIGN §10), for any member of the company, agents included."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from companies.api.activity import ActivitySerializer
from companies.dashboard import company_dashboard
from companies.models import Company
from paperclip.api.serializers import CamelSerializer
from paperclip.api.viewsets import ScopedViewSet


class SpendSerializer(CamelSerializer):
    month_spend_cents = serializers.IntegerField(help_text="Spent this UTC calendar month.")
    month_budget_cents = serializers.IntegerField(help_text="The company's budget; 0 = none.")
    utilization_percent = serializers.FloatField(
        help_text="Spend / budget * 100, two decimals; 0 without a budget."
    )


class DashboardSerializer(CamelSerializer):
    company_id = serializers.CharField()
    agents = serializers.DictField(
        child=serializers.IntegerField(), help_text="Agent status → how many (zeros included)."
    )
    issues = serializers.DictField(
        child=serializers.IntegerField(), help_text="Issue status → how many (zeros included)."
    )
    stale_locks = serializers.IntegerField(
        help_text="In-progress issues locked by a run that is no longer live."
    )
    live_runs = serializers.IntegerField(help_text="Queued or running runs with a lease.")
    spend = SpendSerializer()
    pending_approvals = serializers.IntegerField()
    recent_activity = ActivitySerializer(many=True, help_text="The ten newest, newest first.")


class DashboardViewSet(ScopedViewSet):
    queryset = Company.objects.all()

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "If-None-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="The `ETag` of an earlier answer: 304 while it still holds.",
            )
        ],
        responses={
            200: DashboardSerializer,
            304: OpenApiResponse(description="Not modified: the `ETag` sent still holds."),
        },
    )
    def retrieve(self, request, company_pk: str):
        """Where the company stands: agents and issues by status, stale locks, live runs, this
        month's spend against the budget, pending approvals, the ten newest activity rows.
        Answers `ETag`; `If-None-Match` with it → 304."""
        return Response(DashboardSerializer(company_dashboard(self.company)).data)
