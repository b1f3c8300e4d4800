"""`/v1` tasks (reference 003, DESIGN §8): the issue as a task object, listed, read, created,
edited, and moved by the verbs (assign, cancel, reassign, review).

The same rows, querysets and services as `/api`'s issues; only the shape differs: 003's field
names, the status projection of `issues.projection`, labels by name, ids as stored (prefixed),
and a refusal said in task terms (`task_refusals`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import django_filters
from django.db.models import prefetch_related_objects
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.fields import empty
from rest_framework.response import Response

from agents.models import Agent, Team
from issues.api.issues import IssueRefField
from issues.models import Issue, Priority
from issues.projection import TASK_STATES, in_states, refused, state_of
from issues.services.lifecycle import task_create, task_update
from issues.services.steps import FROZEN
from issues.services.verbs import (
    REVIEW_VERDICTS,
    issue_assign,
    issue_cancel,
    issue_reassign,
    issue_review,
)
from issues.v1.scope import TaskScopeMixin
from paperclip.api.fields import CompanyScopedRelatedField, DateTimeField
from paperclip.api.filters import IdFilter
from paperclip.api.serializers import (
    CamelSerializer,
    LabelChoiceField,
    PlannedRepresentationMixin,
)
from paperclip.api.viewsets import ID, route
from paperclip.errors import Conflict, InvalidTransition, Unprocessable, ValidationFailed
from paperclip.v1.viewsets import V1ViewSet


class SpentSerializer(serializers.Serializer):
    usd = serializers.FloatField()


class BudgetSerializer(serializers.Serializer):
    perTaskUsd = serializers.FloatField(allow_null=True)
    spent = SpentSerializer()


class TaskSerializer(PlannedRepresentationMixin, serializers.ModelSerializer):
    """The task object exactly as 003 (plus `identifier`, `priority`, `statusReason`)."""

    companyId = serializers.CharField(source="company_id")
    status = serializers.SerializerMethodField()
    statusReason = serializers.SerializerMethodField()
    priority = LabelChoiceField(Priority)
    parentId = serializers.CharField(source="parent_id", allow_null=True)
    assignedAgentId = serializers.CharField(source="assignee_agent_id", allow_null=True)
    assignedTeamId = serializers.CharField(source="team_id", allow_null=True)
    budget = serializers.SerializerMethodField()
    dueAt = DateTimeField(source="due_at", allow_null=True)
    labels = serializers.SerializerMethodField()
    dependencies = serializers.SerializerMethodField()
    currentRunId = serializers.SerializerMethodField()
    createdAt = DateTimeField(source="created_at")
    updatedAt = DateTimeField(source="updated_at")

    class Meta:
        model = Issue
        fields = [
            "id", "identifier", "companyId", "title", "description", "status", "statusReason",
            "priority", "parentId", "assignedAgentId", "assignedTeamId", "budget", "dueAt",
            "labels", "dependencies", "currentRunId", "createdAt", "updatedAt",
        ]  # fmt: skip
        read_only_fields = fields

    def get_status(self, issue: Issue) -> str:
        return state_of(issue)

    def get_statusReason(self, issue: Issue) -> str | None:
        return issue.status_reason or None

    @extend_schema_field(BudgetSerializer)
    def get_budget(self, issue: Issue) -> dict:
        per_task = float(issue.budget_usd) if issue.budget_usd is not None else None
        return {"perTaskUsd": per_task, "spent": {"usd": float(issue.spent_usd)}}

    def get_labels(self, issue: Issue) -> list[str]:
        return sorted(label.name for label in issue.label_list())

    def get_dependencies(self, issue: Issue) -> list[str]:
        return [dependency.pk for dependency in issue.dependency_list()]

    def get_currentRunId(self, issue: Issue) -> str | None:
        run = issue.checkout_run
        return run.pk if run is not None and run.is_live else None


# -- writes ----------------------------------------------------------------------------------


class BudgetInputSerializer(CamelSerializer):
    per_task_usd = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, allow_null=True
    )


class TaskWriteSerializer(CamelSerializer):
    """What a task's create and PATCH accept (003's names); `budget.perTaskUsd` lands as
    `budget_usd`, labels stay names for the service."""

    title = serializers.CharField(max_length=500)
    description = serializers.CharField(allow_blank=True, required=False)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, source="label_names"
    )
    due_at = DateTimeField(allow_null=True, required=False)
    budget = BudgetInputSerializer(required=False)

    def validate(self, attrs):
        if "budget" in attrs:
            budget = attrs.pop("budget")
            if "per_task_usd" not in budget:  # a PATCH is partial, its `budget` too
                raise serializers.ValidationError({"budget": {"perTaskUsd": ["Required."]}})
            attrs["budget_usd"] = budget["per_task_usd"]
        return attrs


class TaskCreateSerializer(TaskWriteSerializer):
    priority = LabelChoiceField(Priority, required=False)
    parent_id = IssueRefField(required=False, allow_null=True, source="parent")
    assigned_agent_id = CompanyScopedRelatedField(
        model=Agent, required=False, allow_null=True, source="assignee_agent"
    )
    assigned_team_id = CompanyScopedRelatedField(
        model=Team, required=False, allow_null=True, source="team"
    )
    dependencies = IssueRefField(many=True, required=False)


# Why PATCH refuses a field of the task it does not edit, and what to use instead.
_VERBS = "POST .../issues/{id}/assign, /reassign, /cancel or /review"
NOT_PATCHED = {
    "status": f"The status changes through the verbs: {_VERBS}.",
    "statusReason": f"Set by the verbs: {_VERBS}.",
    "assignedAgentId": "Use POST .../issues/{id}/assign (a queued task) or /reassign.",
}
PATCHED = "title, description, labels, dueAt and budget.perTaskUsd"


class TaskUpdateSerializer(TaskWriteSerializer):
    """PATCH: only 003's editable fields; any other field is a 400 naming it and what to use."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)

    def run_validation(self, data=empty):
        if isinstance(data, Mapping):
            refused = {
                name: [NOT_PATCHED.get(name, f"Not editable: PATCH takes {PATCHED}.")]
                for name in data
                if name not in self.fields
            }
            if refused:
                raise serializers.ValidationError(refused)
        return super().run_validation(data)


class AssignSerializer(CamelSerializer):
    agent_id = CompanyScopedRelatedField(model=Agent, source="agent")


class ReassignSerializer(CamelSerializer):
    to_agent_id = CompanyScopedRelatedField(model=Agent, source="agent")
    reason = serializers.CharField(allow_blank=True, required=False, default="", max_length=2000)


class CancelSerializer(CamelSerializer):
    reason = serializers.CharField(allow_blank=True, required=False, default="", max_length=2000)


class ReviewSerializer(CamelSerializer):
    verdict = serializers.ChoiceField(choices=REVIEW_VERDICTS)
    comment = serializers.CharField(
        allow_blank=True, required=False, default="", max_length=100_000
    )


@contextmanager
def task_refusals(issue: Issue, action: str) -> Iterator[None]:
    """The one place a refusal of the task's state is said in `/v1`'s terms (DESIGN §8).

    A verb the state does not accept, or any verb on a finished task, is 409
    `invalid_transition` with `{status, action, allowedActions}` (the `/v1` state the task is
    in, as the service saw it). An edit (`action="update"`) of a finished task is 409
    `task_frozen`.
    """
    try:
        yield
    except Unprocessable as exc:
        if not (isinstance(exc, InvalidTransition) or exc.code == FROZEN):
            raise
        issue.refresh_from_db()  # the service's change was rolled back: the state it refused
        state = state_of(issue)
        if action == "update":
            raise Conflict(
                f"The task is {state}; a finished task cannot be edited",
                code="task_frozen",
                details={"status": state},
            ) from exc
        raise refused(issue, action) from exc


# -- reads ------------------------------------------------------------------------------------


def _states(value: str) -> list[str]:
    states = [state.strip() for state in value.split(",") if state.strip()]
    unknown = [state for state in states if state not in TASK_STATES]
    if unknown:
        raise ValidationFailed(
            details={
                "status": [f"Unknown status {', '.join(unknown)}: one of {', '.join(TASK_STATES)}"]
            }
        )
    return states


class TaskFilter(django_filters.FilterSet):
    """003's list filters: `status` (comma list of task states), `agent`, `team`, `parent`
    (`null` = top level), `label` (name, exact), `since` / `until` (on `createdAt`)."""

    status = django_filters.CharFilter(
        method="filter_status", help_text="Comma list: queued,running"
    )
    # An id that names no agent (or team) matches nothing, not the unassigned tasks.
    agent = IdFilter(field_name="assignee_agent_id", prefix="agt", help_text="Assigned agent id")
    team = IdFilter(field_name="team_id", prefix="tm", help_text="Assigned team id")
    parent = django_filters.CharFilter(
        method="filter_parent", help_text="`null` for top-level tasks, or a task id"
    )
    label = django_filters.CharFilter(field_name="labels__name", help_text="A label name (exact)")
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Issue
        fields: list[str] = []

    def filter_status(self, queryset, name, value):
        return queryset.filter(in_states(_states(value)))

    def filter_parent(self, queryset, name, value):
        if value == "null":
            return queryset.filter(parent__isnull=True)
        # The queryset is the company's: a parent elsewhere has no children in it.
        return queryset.filter(parent__in=Issue.objects.by_ref(value))


@extend_schema_view(
    list=extend_schema(tags=["v1"], responses=TaskSerializer(many=True)),
    retrieve=extend_schema(tags=["v1"], responses=TaskSerializer),
    create=extend_schema(
        tags=["v1"], request=TaskCreateSerializer, responses={201: TaskSerializer}
    ),
    partial_update=extend_schema(
        tags=["v1"],
        request=TaskUpdateSerializer,
        responses=TaskSerializer,
        parameters=[OpenApiParameter("If-Match", location="header", required=False)],
    ),
    assign=extend_schema(tags=["v1"], request=AssignSerializer, responses=TaskSerializer),
    cancel=extend_schema(tags=["v1"], request=CancelSerializer, responses=TaskSerializer),
    reassign=extend_schema(tags=["v1"], request=ReassignSerializer, responses=TaskSerializer),
    review=extend_schema(tags=["v1"], request=ReviewSerializer, responses=TaskSerializer),
)
class TaskViewSet(TaskScopeMixin, V1ViewSet):
    queryset = Issue.objects.all()
    serializer_class = TaskSerializer
    filterset_class = TaskFilter
    # Newest first; the keyset makes a page never repeat or skip a task inserted meanwhile.
    ordering_keys = (("created_at", True), ("id", True))
    task_kwarg = "pk"

    def get_base_queryset(self):
        if self.action == "list":
            return Issue.objects.with_spent()  # read as rows (`IssueQuerySet.rows`)
        return Issue.objects.select_related("checkout_run").with_relations().with_spent()

    def list(self, request, company_pk: str):
        tasks = self.filter_queryset(self.get_queryset()).distinct()
        page = self.paginate_queryset(tasks.rows(with_holder=True))
        return self.get_paginated_response(TaskSerializer(page, many=True).data)

    def retrieve(self, request, company_pk: str, pk: str):
        issue = self.issue_by_ref(pk, self.get_queryset())  # with spent, for the answer
        return Response(TaskSerializer(issue).data, headers={"ETag": issue.etag})

    def _render(self, issue: Issue, **kwargs) -> Response:
        """The task a service answered, its labels and dependencies read fresh."""
        prefetch_related_objects([issue], "labels", "dependencies")
        return Response(TaskSerializer(issue).data, headers={"ETag": issue.etag}, **kwargs)

    def _input(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data, context={"company": self.company})
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def create(self, request, company_pk: str):
        data = self._input(TaskCreateSerializer)
        label_names = data.pop("label_names", None)
        issue = task_create(
            actor=self.actor, company=self.company, data=data, label_names=label_names
        )
        return self._render(issue, status=status.HTTP_201_CREATED)

    def partial_update(self, request, company_pk: str, pk: str):
        issue = self.task
        changes = self._input(TaskUpdateSerializer)
        label_names = changes.pop("label_names", None)
        with task_refusals(issue, "update"):
            issue = task_update(
                actor=self.actor_on(issue),
                issue=issue,
                changes=changes,
                label_names=label_names,
                if_match=request.headers.get("If-Match"),
            )
        return self._render(issue)

    def _verb(self, name: str, serializer_class, service) -> Response:
        """Run one verb's service on the task the URL names, refusals in task terms."""
        issue = self.task
        data = self._input(serializer_class)
        with task_refusals(issue, name):
            issue = service(actor=self.actor_on(issue), issue=issue, **data)
        return self._render(issue)

    @action(detail=True, methods=["post"])
    def assign(self, request, company_pk: str, pk: str):
        """A queued task gets its agent (→ assigned), who is woken."""
        return self._verb("assign", AssignSerializer, issue_assign)

    @action(detail=True, methods=["post"])
    def cancel(self, request, company_pk: str, pk: str):
        """Any open task → cancelled; a live run holding it is stopped, its lease released."""
        return self._verb("cancel", CancelSerializer, issue_cancel)

    @action(detail=True, methods=["post"])
    def reassign(self, request, company_pk: str, pk: str):
        """Work that has an agent goes to another (→ assigned, `reassigned`); a run holding it
        ends with exit reason `reassigned`; the new agent is woken."""
        return self._verb("reassign", ReassignSerializer, issue_reassign)

    @action(detail=True, methods=["post"])
    def review(self, request, company_pk: str, pk: str):
        """The board or a manager of the assignee decides a task in review: accept → done,
        request_changes → assigned to the same agent with the comment."""
        return self._verb("review", ReviewSerializer, issue_review)


COMPANY = rf"companies/(?P<company_pk>{ID})"

TASK = rf"{COMPANY}/issues/(?P<pk>{ID})"

urlpatterns = [
    route(
        f"{COMPANY}/issues",
        TaskViewSet.as_view({"get": "list", "post": "create"}),
        name="v1-tasks",
    ),
    route(
        TASK, TaskViewSet.as_view({"get": "retrieve", "patch": "partial_update"}), name="v1-task"
    ),
    *(
        route(f"{TASK}/{verb}", TaskViewSet.as_view({"post": verb}), name=f"v1-task-{verb}")
        for verb in ("assign", "cancel", "reassign", "review")
    ),
]
