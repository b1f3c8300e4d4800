"""`/v1` bulk operations on tasks (reference 003, DESIGN §8).

`POST /v1/companies/{cid}/issues/bulk {ids, op, args, dryRun}` runs one verb on up to 500 tasks
and answers each task's outcome in the order given. Each task is its own transaction, so one
refused task never undoes another: the view opts out of the request-wide transaction
(`ATOMIC_REQUESTS`) and opens one per task. A dry run runs every task the same way, service,
checks and all, and rolls each one back: it reports what would happen and writes nothing.

Each task is one call of the service its verb has on its own (`issue_assign`, `issue_cancel`,
`issue_reassign`; `task_update` for labels and priority), refusals said in task terms as the
single-task verbs say them (`task_refusals`), and errors in `/v1`'s shape without the request id
(the envelope carries it once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q, prefetch_related_objects
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.response import Response

from issues.models import Issue, Priority
from issues.services.lifecycle import task_update
from issues.services.verbs import issue_assign, issue_cancel, issue_reassign
from issues.v1.tasks import (
    AssignSerializer,
    CancelSerializer,
    ReassignSerializer,
    TaskSerializer,
    task_refusals,
)
from paperclip.actors import Actor
from paperclip.api.serializers import CamelSerializer, LabelChoiceField
from paperclip.api.viewsets import ID, route
from paperclip.ids import parse_id
from paperclip.v1.errors import V1
from paperclip.v1.viewsets import V1ViewSet

MAX_IDS = 500


class LabelsSerializer(CamelSerializer):
    labels = serializers.ListField(
        child=serializers.CharField(max_length=64), allow_empty=False, max_length=100
    )


class PrioritySerializer(CamelSerializer):
    priority = LabelChoiceField(Priority)


def _label(actor: Actor, issue: Issue, labels: list[str]) -> Issue:
    return task_update(actor=actor, issue=issue, changes={}, add_labels=labels)


def _unlabel(actor: Actor, issue: Issue, labels: list[str]) -> Issue:
    return task_update(actor=actor, issue=issue, changes={}, remove_labels=labels)


def _set_priority(actor: Actor, issue: Issue, priority: int) -> Issue:
    return task_update(actor=actor, issue=issue, changes={"priority": priority})


@dataclass(frozen=True)
class Op:
    """One bulk verb: what its `args` are, the action its refusals name, and the one service
    call it makes per task."""

    args: type[serializers.Serializer]
    action: str
    apply: Callable[..., Issue]


OPS: dict[str, Op] = {
    "assign": Op(AssignSerializer, "assign", issue_assign),
    "cancel": Op(CancelSerializer, "cancel", issue_cancel),
    "reassign": Op(ReassignSerializer, "reassign", issue_reassign),
    # Labels and priority are edits: a finished task refuses them as `task_frozen`.
    "label": Op(LabelsSerializer, "update", _label),
    "unlabel": Op(LabelsSerializer, "update", _unlabel),
    "set_priority": Op(PrioritySerializer, "update", _set_priority),
}


class BulkSerializer(CamelSerializer):
    ids = serializers.ListField(
        child=serializers.CharField(max_length=100),
        min_length=1,
        max_length=MAX_IDS,
        help_text=f"Task ids or identifiers, 1 to {MAX_IDS}; answered in this order.",
    )
    op = serializers.ChoiceField(choices=list(OPS))
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
        args = OPS[attrs["op"]].args(data=attrs["args"], context=self.context)
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
        ids, args = serializer.validated_data["ids"], serializer.validated_data["args"]
        op, dry_run = OPS[serializer.validated_data["op"]], serializer.validated_data["dry_run"]

        issues = self._issues(ids)
        done: set[str] = set()
        outcomes = []
        for ref in ids:
            issue = issues.get(ref)
            if issue is None:
                outcome = {"ok": False, "error": _error("not_found", "Not found")}
            elif issue.pk in done:
                message = "Listed more than once: only its first entry runs"
                outcome = {"ok": False, "error": _error("duplicate", message, {"id": issue.pk})}
            else:
                done.add(issue.pk)
                outcome = self._run(op, issue, args, dry_run)
            outcomes.append({"id": ref, **outcome})

        succeeded = sum(1 for outcome in outcomes if outcome["ok"])
        response = Response(outcomes)
        response.meta = {
            "succeeded": succeeded,
            "failed": len(outcomes) - succeeded,
            "dryRun": dry_run,
        }
        return response

    def _issues(self, refs: list[str]) -> dict[str, Issue]:
        """The company's tasks the refs name (by id, in either form, or identifier), in one
        query; a ref naming nothing the caller can see is absent."""
        pks = {ref: parse_id(ref, "iss") for ref in refs}
        identifiers = {ref: ref.upper() for ref, pk in pks.items() if not pk}
        rows = self.get_queryset().filter(
            Q(pk__in={pk for pk in pks.values() if pk}) | Q(identifier__in=identifiers.values())
        )
        found = {issue.pk: issue for issue in rows} | {issue.identifier: issue for issue in rows}
        named = {ref: found.get(pks[ref] or identifiers.get(ref)) for ref in pks}
        return {ref: issue for ref, issue in named.items() if issue is not None}

    def _run(self, op: Op, issue: Issue, args: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        """One task in its own transaction: the service call, then the task as it ends up.
        A refusal is this task's error entry; a failure we cannot name (a bug, the database
        gone) still fails the request as a whole."""
        try:
            with transaction.atomic():
                with task_refusals(issue, op.action):
                    issue = op.apply(actor=self.actor, issue=issue, **args)
                prefetch_related_objects([issue], "labels", "dependencies")
                task = TaskSerializer(issue).data
                if dry_run:  # the task as it would be, and nothing of it kept
                    transaction.set_rollback(True)
        except Exception as exc:
            answer = V1.answer(self.request, exc)
            if answer is None or answer[0] >= 500:
                raise
            error = answer[1]["error"]
            return {"ok": False, "error": _error(error["code"], error["message"], error["details"])}
        return {"ok": True, "task": task}


# Each task commits (or rolls back) on its own: not one transaction around the request.
bulk_view = transaction.non_atomic_requests(BulkViewSet.as_view({"post": "create"}))

urlpatterns = [
    route(rf"companies/(?P<company_pk>{ID})/issues/bulk", bulk_view, name="v1-tasks-bulk"),
]
