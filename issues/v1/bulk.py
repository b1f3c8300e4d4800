"""`/v1` bulk operations on tasks (reference 003, DESIGN §8).

`POST /v1/companies/{cid}/issues/bulk {ids, op, args, dryRun}` runs one verb on up to 500 tasks
and answers each task's outcome in the order given. Each task is its own transaction, so one
refused task never undoes another: the view opts out of the request-wide transaction
(`ATOMIC_REQUESTS`) and opens one per task. A dry run runs every task the same way, service,
checks and all, and rolls each one back: it reports what would happen and writes nothing.

The tasks are run by `issues.services.bulk.bulk_apply` (the admin's bulk actions call it too);
this view validates the op's args, says refusals in task terms as the single-task verbs say them
(`task_refusals`), and errors in `/v1`'s shape without the request id (the envelope carries it
once).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.response import Response

from issues.models import Issue, Priority
from issues.services.bulk import OPS, BulkResult, bulk_apply
from issues.v1.tasks import (
    AssignSerializer,
    CancelSerializer,
    ReassignSerializer,
    TaskSerializer,
    task_refusals,
)
from paperclip.api.serializers import CamelSerializer, LabelChoiceField
from paperclip.api.viewsets import ID, route
from paperclip.errors import DomainError
from paperclip.v1.viewsets import V1ViewSet

MAX_IDS = 500


class LabelsSerializer(CamelSerializer):
    labels = serializers.ListField(
        child=serializers.CharField(max_length=64), allow_empty=False, max_length=100
    )


class PrioritySerializer(CamelSerializer):
    priority = LabelChoiceField(Priority)


# Each op's `args`, validated into the keywords its service call takes.
ARGS: dict[str, type[serializers.Serializer]] = {
    "assign": AssignSerializer,
    "cancel": CancelSerializer,
    "reassign": ReassignSerializer,
    "label": LabelsSerializer,
    "unlabel": LabelsSerializer,
    "set_priority": PrioritySerializer,
}


class BulkSerializer(CamelSerializer):
    ids = serializers.ListField(
        child=serializers.CharField(max_length=100),
        min_length=1,
        max_length=MAX_IDS,
        help_text=f"Task ids or identifiers, 1 to {MAX_IDS}; answered in this order.",
    )
    op = serializers.ChoiceField(choices=list(ARGS))
    args = serializers.DictField(
        required=False,
        default=dict,
        help_text="The op's arguments: assign `{agentId}`, cancel `{reason}`, reassign "
        "`{toAgentId, reason}`, label and unlabel `{labels: [names]}`, set_priority "
        "`{priority}`.",
    )
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="Run every check, write nothing."
    )

    def validate(self, attrs):
        args = ARGS[attrs["op"]](data=attrs["args"], context=self.context)
        if not args.is_valid():
            raise serializers.ValidationError({"args": args.errors})
        attrs["args"] = dict(args.validated_data)
        return attrs


class BulkErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField(allow_null=True)


class BulkOutcomeSerializer(serializers.Serializer):
    """One task's outcome: `task` as it is (or, in a dry run, would be) when `ok`, else
    `error`."""

    id = serializers.CharField(help_text="The id as it was given")
    ok = serializers.BooleanField()
    task = TaskSerializer(required=False)
    error = BulkErrorSerializer(required=False)


def _error(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details}


@extend_schema_view(
    create=extend_schema(
        tags=["v1"],
        request=BulkSerializer,
        responses={200: BulkOutcomeSerializer(many=True)},
        summary="Run one verb on many tasks, each in its own transaction",
    )
)
class BulkViewSet(V1ViewSet):
    queryset = Issue.objects.all()
    serializer_class = BulkSerializer  # what OPTIONS describes
    pagination_class = None  # every outcome in one answer
    # The envelope's `meta` on this answer (declared in the schema by `paperclip.api.schema`).
    envelope_meta = {
        "succeeded": {"type": "integer"},
        "failed": {"type": "integer"},
        "dryRun": {"type": "boolean"},
    }

    def create(self, request, company_pk: str):
        serializer = BulkSerializer(data=request.data, context={"company": self.company})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        results = bulk_apply(
            actor=self.actor,
            company=self.company,
            ids=data["ids"],
            op=data["op"],
            args=data["args"],
            dry_run=data["dry_run"],
        )
        action = OPS[data["op"]].action
        outcomes = [{"id": result.ref, **self._outcome(result, action)} for result in results]
        succeeded = sum(1 for result in results if result.ok)
        response = Response(outcomes)
        response.meta = {
            "succeeded": succeeded,
            "failed": len(results) - succeeded,
            "dryRun": data["dry_run"],
        }
        return response

    def _outcome(self, result: BulkResult, action: str) -> dict[str, Any]:
        if result.ok:
            return {"ok": True, "task": TaskSerializer(result.issue).data}
        error = result.error
        if result.issue is not None and error.code != "duplicate":
            error = _in_task_terms(result.issue, action, error)
        return {"ok": False, "error": _error(error.code, error.message, error.details)}


def _in_task_terms(issue: Issue, action: str, error: DomainError) -> DomainError:
    """A refusal as the single-task verbs say it (`task_refusals`: `invalid_transition` with
    the `/v1` state and its actions, `task_frozen`), other refusals as they are."""
    try:
        with task_refusals(issue, action):
            raise error
    except DomainError as said:
        return said


# Each task commits (or rolls back) on its own: not one transaction around the request.
bulk_view = transaction.non_atomic_requests(BulkViewSet.as_view({"post": "create"}))

urlpatterns = [
    route(rf"companies/(?P<company_pk>{ID})/issues/bulk", bulk_view, name="v1-tasks-bulk"),
]
