"""`/v1` runs and the agent plane (reference 003, DESIGN §8).

An agent claims a task (`POST .../issues/{id}/runs`), then drives its run: `heartbeat`,
`progress`, and one of `complete`, `fail`, `handoff`. Each handler validates its body (unknown
fields refused), calls one service of `issues.services.claims`, and renders the run. The runs
listed are the task's attempts: the runs that claimed it (the `/api` heartbeat runs, the same
rows), not wakes that never did.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from agents.models import HeartbeatRun
from issues.services import claims
from issues.v1.scope import TaskScopeMixin
from paperclip.api.fields import DateTimeField
from paperclip.api.serializers import CamelSerializer
from paperclip.api.viewsets import ID, found, route
from paperclip.ids import parse_id
from paperclip.v1.viewsets import V1ViewSet

EXIT_REASONS = ("completed", "failed", "cancelled", "reassigned", "handoff", "lease_expired")
# A finished run whose exit reason is not one of 003's (an `/api` finish, the board's cancel)
# is named by how it ended.
_EXIT_BY_STATUS = {
    HeartbeatRun.Status.SUCCEEDED: "completed",
    HeartbeatRun.Status.FAILED: "failed",
    HeartbeatRun.Status.CANCELLED: "cancelled",
    HeartbeatRun.Status.TIMED_OUT: "lease_expired",
}


def exit_reason(run: HeartbeatRun) -> str | None:
    """003's exit reason of a finished run; None while it is live by status."""
    if not run.is_terminal:
        return None
    return run.exit_reason if run.exit_reason in EXIT_REASONS else _EXIT_BY_STATUS[run.status]


class LeaseSerializer(serializers.Serializer):
    acquiredAt = DateTimeField()
    renewals = serializers.IntegerField()
    lastRenewedAt = DateTimeField(allow_null=True)
    expiresAt = DateTimeField(allow_null=True)
    releasedAt = DateTimeField(allow_null=True)
    releaseReason = serializers.CharField(allow_null=True)


class CostSerializer(serializers.Serializer):
    usd = serializers.FloatField()
    inputTokens = serializers.IntegerField()
    outputTokens = serializers.IntegerField()


class RunSerializer(serializers.ModelSerializer):
    """The run object of 003: one attempt at a task, its lease, its last checkpoint, its cost
    and how it ended."""

    taskId = serializers.CharField(source="issue_id")
    agentId = serializers.CharField(source="agent_id")
    startedAt = DateTimeField(source="started_at", allow_null=True)
    endedAt = DateTimeField(source="finished_at", allow_null=True)
    leaseExpiresAt = DateTimeField(source="lease_expires_at", allow_null=True)
    fencingToken = serializers.IntegerField(source="fencing_token")
    leaseHistory = serializers.SerializerMethodField()
    checkpoint = serializers.JSONField(allow_null=True)
    cost = serializers.SerializerMethodField()
    exitReason = serializers.SerializerMethodField()
    exitDetails = serializers.JSONField(source="exit_details")
    workspaceUrl = serializers.SerializerMethodField()

    class Meta:
        model = HeartbeatRun
        fields = [
            "id", "taskId", "agentId", "status", "startedAt", "endedAt", "leaseExpiresAt",
            "fencingToken", "leaseHistory", "checkpoint", "cost", "exitReason", "exitDetails",
            "workspaceUrl",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(LeaseSerializer(many=True))
    def get_leaseHistory(self, run: HeartbeatRun) -> list[dict[str, Any]]:
        if run.lease_acquired_at is None:
            return []
        lease = {
            "acquiredAt": run.lease_acquired_at,
            "renewals": run.lease_renewals,
            "lastRenewedAt": run.lease_renewed_at,
            "expiresAt": run.lease_expires_at,
            "releasedAt": run.lease_released_at,
            "releaseReason": run.lease_release_reason or None,
        }
        return [LeaseSerializer(lease).data]

    @extend_schema_field(CostSerializer)
    def get_cost(self, run: HeartbeatRun) -> dict[str, Any]:
        cost = run.cost
        return {
            "usd": float(cost.usd),
            "inputTokens": cost.input_tokens,
            "outputTokens": cost.output_tokens,
        }

    @extend_schema_field(
        serializers.ChoiceField(choices=EXIT_REASONS, allow_null=True)  # type: ignore[arg-type]
    )
    def get_exitReason(self, run: HeartbeatRun) -> str | None:
        return exit_reason(run)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_workspaceUrl(self, run: HeartbeatRun) -> str | None:
        return None  # workspaces are not retained (DESIGN §7)


class HeartbeatSerializer(serializers.Serializer):
    leaseExpiresAt = DateTimeField(source="lease_expires_at")
    cancelRequested = serializers.SerializerMethodField()

    def get_cancelRequested(self, run: HeartbeatRun) -> bool:
        return run.cancel_requested


class NoBodySerializer(CamelSerializer):
    """Claims and heartbeats take no fields; any field sent is refused."""


class ProgressSerializer(CamelSerializer):
    checkpoint = serializers.DictField()
    message = serializers.CharField(required=False, allow_blank=True, default="", max_length=10000)


class CompleteSerializer(CamelSerializer):
    checkpoint = serializers.DictField(required=False, allow_null=True, default=None)
    summary = serializers.CharField(required=False, allow_blank=True, default="", max_length=10000)


class FailSerializer(CamelSerializer):
    reason = serializers.CharField(max_length=10000)
    details = serializers.DictField(required=False, default=dict)


class HandoffSerializer(CamelSerializer):
    reason = serializers.CharField(max_length=10000)


def _verb_schema(request, response=RunSerializer):
    return extend_schema(tags=["v1"], request=request, responses=response)


class RunViewSet(TaskScopeMixin, V1ViewSet):
    """A task's runs: listed, read, claimed, and driven by the agent that claimed it."""

    queryset = HeartbeatRun.objects.all()
    serializer_class = RunSerializer
    # Newest first, as the task's attempts happened.
    ordering_keys = (("created_at", True), ("id", True))

    def attempts(self):
        return self.get_queryset().claims_of(self.task.pk).with_cost()

    def get_object(self) -> HeartbeatRun:
        return found(self.attempts().filter(pk=parse_id(self.kwargs["pk"], "run")))

    def _input(self, serializer_class) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(tags=["v1"], responses=RunSerializer(many=True))
    def list(self, request, company_pk: str, issue_pk: str):
        page = self.paginate_queryset(self.attempts())
        return self.get_paginated_response(RunSerializer(page, many=True).data)

    @extend_schema(tags=["v1"], responses=RunSerializer)
    def retrieve(self, request, company_pk: str, issue_pk: str, pk: str):
        return Response(RunSerializer(self.get_object()).data)

    @extend_schema(tags=["v1"], request=NoBodySerializer, responses={201: RunSerializer})
    def create(self, request, company_pk: str, issue_pk: str):
        """Claim the task for a new run: of N racing agents exactly one wins (201)."""
        task = self.task
        self._input(NoBodySerializer)
        run = claims.task_claim(actor=self.actor, issue=task)
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)

    @_verb_schema(NoBodySerializer, HeartbeatSerializer)
    @action(detail=True, methods=["post"])
    def heartbeat(self, request, company_pk: str, issue_pk: str, pk: str):
        """Renew the run's lease; `cancelRequested` says whether to stop."""
        run = self.get_object()
        self._input(NoBodySerializer)
        run = claims.run_lease_renew(actor=self.actor, issue=self.task, run=run)
        return Response(HeartbeatSerializer(run).data)

    @_verb_schema(ProgressSerializer)
    @action(detail=True, methods=["post"])
    def progress(self, request, company_pk: str, issue_pk: str, pk: str):
        """Report progress: the newest checkpoint is kept on the run."""
        run = self.get_object()
        data = self._input(ProgressSerializer)
        run = claims.run_progress(actor=self.actor, issue=self.task, run=run, **data)
        return Response(RunSerializer(run).data)

    @_verb_schema(CompleteSerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request, company_pk: str, issue_pk: str, pk: str):
        """Mark the work complete: the task goes to review, the run succeeds."""
        run = self.get_object()
        data = self._input(CompleteSerializer)
        run = claims.run_complete(actor=self.actor, issue=self.task, run=run, **data)
        return Response(RunSerializer(run).data)

    @_verb_schema(FailSerializer)
    @action(detail=True, methods=["post"])
    def fail(self, request, company_pk: str, issue_pk: str, pk: str):
        """Give up: the task and the run fail."""
        run = self.get_object()
        data = self._input(FailSerializer)
        run = claims.run_fail(actor=self.actor, issue=self.task, run=run, **data)
        return Response(RunSerializer(run).data)

    @_verb_schema(HandoffSerializer)
    @action(detail=True, methods=["post"])
    def handoff(self, request, company_pk: str, issue_pk: str, pk: str):
        """Hand the task to a human: it waits in handoff, the run ends."""
        run = self.get_object()
        data = self._input(HandoffSerializer)
        run = claims.run_handoff(actor=self.actor, issue=self.task, run=run, **data)
        return Response(RunSerializer(run).data)


TASK = rf"companies/(?P<company_pk>{ID})/issues/(?P<issue_pk>{ID})"
RUN = rf"{TASK}/runs/(?P<pk>{ID})"

urlpatterns = [
    route(
        f"{TASK}/runs",
        RunViewSet.as_view({"get": "list", "post": "create"}),
        name="v1-task-runs",
    ),
    route(RUN, RunViewSet.as_view({"get": "retrieve"}), name="v1-task-run"),
    *(
        route(f"{RUN}/{verb}", RunViewSet.as_view({"post": verb}), name=f"v1-task-run-{verb}")
        for verb in ("heartbeat", "progress", "complete", "fail", "handoff")
    ),
]
