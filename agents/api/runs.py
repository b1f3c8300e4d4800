"""Heartbeat runs: read by the company; started, renewed and finished by their agent."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from agents import services
from agents.api.filters import HeartbeatRunFilter
from agents.models import HeartbeatRun
from agents.runs import mint_run_token
from paperclip.api.serializers import CamelModelSerializer, CamelSerializer
from paperclip.api.viewsets import ScopedViewSet


class HeartbeatRunSerializer(CamelModelSerializer):
    cancel_requested = serializers.SerializerMethodField()
    is_live = serializers.SerializerMethodField()

    class Meta:
        model = HeartbeatRun
        fields = [
            "id",
            "company_id",
            "agent_id",
            "status",
            "invocation_source",
            "wake_reason",
            "issue_id",
            "context",
            "created_at",
            "started_at",
            "finished_at",
            "lease_expires_at",
            "is_live",
            "cancel_requested",
            "error",
            "exit_reason",
            "usage",
            "result",
        ]
        read_only_fields = fields

    def get_cancel_requested(self, run: HeartbeatRun) -> bool:
        return run.cancel_requested_at is not None

    def get_is_live(self, run: HeartbeatRun) -> bool:
        return run.is_live


class WokenRunSerializer(HeartbeatRunSerializer):
    """The answer to a wakeup: the run, and the token that speaks for it."""

    run_token = serializers.SerializerMethodField()

    class Meta(HeartbeatRunSerializer.Meta):
        fields = [*HeartbeatRunSerializer.Meta.fields, "run_token"]
        read_only_fields = fields

    def get_run_token(self, run: HeartbeatRun) -> str:
        return mint_run_token(run)


class RunFinishSerializer(CamelSerializer):
    status = serializers.ChoiceField(choices=HeartbeatRun.FINISH_STATUSES)
    usage = serializers.DictField(required=False, default=dict)
    result = serializers.DictField(required=False, default=dict)
    error = serializers.CharField(required=False, allow_blank=True, default="", max_length=20_000)


class HeartbeatRunViewSet(ScopedViewSet):
    """Runs: read by the company; started, renewed and finished by their agent (or the board)."""

    queryset = HeartbeatRun.objects.all()
    serializer_class = HeartbeatRunSerializer
    filterset_class = HeartbeatRunFilter

    def list(self, request, company_pk: str):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(HeartbeatRunSerializer(page, many=True).data)

    def retrieve(self, request, pk: str):
        return Response(HeartbeatRunSerializer(self.get_object()).data)

    @extend_schema(request=None, responses=HeartbeatRunSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request, pk: str):
        run = services.run_start(actor=self.actor, run=self.get_object())
        return Response(HeartbeatRunSerializer(run).data)

    @extend_schema(request=None, responses=HeartbeatRunSerializer)
    @action(detail=True, methods=["post"])
    def heartbeat(self, request, pk: str):
        """Renew the lease; the answer says `leaseExpiresAt` and `cancelRequested`."""
        run = services.run_heartbeat(actor=self.actor, run=self.get_object())
        return Response(HeartbeatRunSerializer(run).data)

    @extend_schema(request=RunFinishSerializer, responses=HeartbeatRunSerializer)
    @action(detail=True, methods=["post"])
    def finish(self, request, pk: str):
        serializer = RunFinishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        run = services.run_finish(
            actor=self.actor,
            run=self.get_object(),
            outcome=data["status"],
            usage=data["usage"],
            result=data["result"],
            error=data["error"],
        )
        return Response(HeartbeatRunSerializer(run).data)

    @extend_schema(request=None, responses=HeartbeatRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk: str):
        run = services.run_cancel(actor=self.actor, run=self.get_object())
        return Response(HeartbeatRunSerializer(run).data)
