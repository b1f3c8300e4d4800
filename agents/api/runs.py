"""Heartbeat runs: read by the company; started, renewed and finished by their agent."""

from __future__ import annotations

from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from agents import services
from agents.api.filters import HeartbeatRunFilter
from agents.models import HeartbeatRun
from agents.runs import mint_run_token
from paperclip.api.serializers import CamelModelSerializer, CamelSerializer
from paperclip.api.viewsets import ScopedViewSet
from paperclip.api.wire import wire_id
from paperclip.errors import NotFound

TEXT = "text/plain; charset=utf-8"


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
            "exit_code",
        ]
        read_only_fields = fields

    def get_cancel_requested(self, run: HeartbeatRun) -> bool:
        return run.cancel_requested

    def get_is_live(self, run: HeartbeatRun) -> bool:
        return run.is_live


class HeartbeatRunDetailSerializer(HeartbeatRunSerializer):
    """One run read by id: also the end of a process run's output (up to 4 KB, kept while it
    runs). Lists leave it out, so a page of runs stays small; the whole output is `.../log`."""

    class Meta(HeartbeatRunSerializer.Meta):
        fields = [*HeartbeatRunSerializer.Meta.fields, "log_tail"]
        read_only_fields = fields


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

    def perform_content_negotiation(self, request, force=False):
        # The log is text whatever `Accept` says (a browser, curl); its errors stay JSON.
        return super().perform_content_negotiation(request, force=force or self.action == "log")

    def list(self, request, company_pk: str):
        runs = self.filter_queryset(self.get_queryset()).defer("log_tail")
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(HeartbeatRunSerializer(page, many=True).data)

    @extend_schema(responses=HeartbeatRunDetailSerializer)
    def retrieve(self, request, pk: str):
        return Response(HeartbeatRunDetailSerializer(self.get_object()).data)

    @extend_schema(
        responses={
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.STR,
                description="The run's output (stdout and stderr, UTF-8): the whole log once "
                "the command has ended, else the end of it kept while it runs (`logTail`).",
            )
        }
    )
    def log(self, request, pk: str):
        """A process run's output as text, for any member of the run's company. 404 while
        there is none: a queued run, a run of an agent that is not a process."""
        run = self.get_object()
        if run.log_file:
            try:
                handle = run.log_file.storage.open(run.log_file.name, "rb")
            except OSError:  # gone from storage: the tail is all that is left
                handle = None
            if handle is not None:
                # Named by the id /api writes, not the stored one the storage path holds.
                name = f"run-{wire_id(run.pk)}.log"
                return untrusted_text(FileResponse(handle, content_type=TEXT, filename=name))
        if run.log_tail:
            return untrusted_text(HttpResponse(run.log_tail, content_type=TEXT))
        raise NotFound("Run has no log")

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


def untrusted_text(response: HttpResponse) -> HttpResponse:
    """A command's output is anything it printed: a browser must neither sniff it into HTML
    nor run it."""
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
