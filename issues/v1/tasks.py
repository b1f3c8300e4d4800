"""`/v1` tasks (reference 003, DESIGN §8): the issue as a task object, listed and read.

The same rows and querysets as `/api`'s issues; only the shape differs: 003's field names, the
status projection of `issues.projection`, labels by name, and ids as stored (prefixed).
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers
from rest_framework.response import Response

from issues.api.lookups import IssueLookupMixin
from issues.models import Issue, Priority
from issues.projection import TASK_STATES, in_states, state_of
from paperclip.api.fields import DateTimeField
from paperclip.api.serializers import LabelChoiceField
from paperclip.api.viewsets import ID, route
from paperclip.errors import ValidationFailed
from paperclip.ids import parse_id
from paperclip.v1.viewsets import V1ViewSet


class SpentSerializer(serializers.Serializer):
    usd = serializers.FloatField()


class BudgetSerializer(serializers.Serializer):
    perTaskUsd = serializers.FloatField(allow_null=True)
    spent = SpentSerializer()


class TaskSerializer(serializers.ModelSerializer):
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
        # Costs are reported per run (DESIGN §10); until they are, nothing has been spent.
        return {"perTaskUsd": per_task, "spent": {"usd": 0.0}}

    def get_labels(self, issue: Issue) -> list[str]:
        return sorted(label.name for label in issue.labels.all())

    def get_dependencies(self, issue: Issue) -> list[str]:
        return sorted(dependency.pk for dependency in issue.dependencies.all())

    def get_currentRunId(self, issue: Issue) -> str | None:
        run = issue.checkout_run
        return run.pk if run is not None and run.is_live else None


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
    agent = django_filters.CharFilter(method="filter_agent", help_text="Assigned agent id")
    team = django_filters.CharFilter(method="filter_team", help_text="Assigned team id")
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

    def filter_agent(self, queryset, name, value):
        return queryset.filter(assignee_agent_id=parse_id(value, "agt"))

    def filter_team(self, queryset, name, value):
        return queryset.filter(team_id=parse_id(value, "tm"))

    def filter_parent(self, queryset, name, value):
        if value == "null":
            return queryset.filter(parent__isnull=True)
        # The queryset is the company's: a parent elsewhere has no children in it.
        return queryset.filter(parent__in=Issue.objects.by_ref(value))


@extend_schema_view(
    list=extend_schema(tags=["v1"], responses=TaskSerializer(many=True)),
    retrieve=extend_schema(tags=["v1"], responses=TaskSerializer),
)
class TaskViewSet(IssueLookupMixin, V1ViewSet):
    queryset = Issue.objects.all()
    serializer_class = TaskSerializer
    filterset_class = TaskFilter
    # Newest first; the keyset makes a page never repeat or skip a task inserted meanwhile.
    ordering_keys = (("created_at", True), ("id", True))

    def get_base_queryset(self):
        return Issue.objects.select_related("checkout_run").prefetch_related(
            "labels", "dependencies"
        )

    def list(self, request, company_pk: str):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()).distinct())
        return self.get_paginated_response(TaskSerializer(page, many=True).data)

    def retrieve(self, request, company_pk: str, pk: str):
        issue = self.issue_by_ref(pk, self.get_queryset())
        return Response(TaskSerializer(issue).data, headers={"ETag": issue.etag})


COMPANY = rf"companies/(?P<company_pk>{ID})"

urlpatterns = [
    route(f"{COMPANY}/issues", TaskViewSet.as_view({"get": "list"}), name="v1-tasks"),
    route(
        rf"{COMPANY}/issues/(?P<pk>{ID})",
        TaskViewSet.as_view({"get": "retrieve"}),
        name="v1-task",
    ),
]
