"""Costs on `/api` (DESIGN §10): cost events as Paperclip's clients report and list them, and the
company's spend rolled up over a window of time.

A report is one call of `issues.services.costs.cost_record` (who may report, the budgets). The
roll-ups are reads: each is one aggregate query over the company's cost events (`rollup`), the
window parsed once (`window`); `/v1` answers the same numbers in USD (`issues.v1.costs`).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import django_filters
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from agents.models import Agent, HeartbeatRun, this_month, whole_cents
from issues.api.issues import IssueRefField
from issues.models import CostEvent
from issues.services.costs import cost_record
from paperclip.api.fields import CompanyScopedRelatedField, DateTimeField
from paperclip.api.filters import IdFilter
from paperclip.api.serializers import CamelModelSerializer, CamelSerializer
from paperclip.api.viewsets import ScopedViewSet
from paperclip.errors import ValidationFailed

# The columns' limits, so an oversized number is a 400 rather than a database error.
MAX_TOKENS = 2**63 - 1
MAX_COST_CENTS = 10**12 - 1  # cost_cents: 16 digits, 4 of them after the point

# -- the window -------------------------------------------------------------------------------

Window = tuple[datetime | None, datetime | None]


def _moment(params, name: str, *, end: bool) -> datetime | None:
    """An ISO 8601 datetime (UTC when it names no zone) or date: a date starts at its UTC
    midnight, and as the end of a window it counts the whole day."""
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        day = parse_date(raw)  # first: a date alone would parse as a datetime at midnight
        moment = None if day else parse_datetime(raw)
    except ValueError:  # well formed, not a real date (2026-02-30)
        moment = day = None
    if moment is None and day is None:
        raise ValidationFailed(
            f"{name} must be an ISO 8601 date or datetime",
            details={name: ["Must be an ISO 8601 date or datetime (2026-04-01 or ...T08:00Z)."]},
        )
    if moment is None:
        moment = datetime.combine(day + timedelta(days=1 if end else 0), time(), tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def window(
    params, start: str = "from", end: str = "to", *, default: Window | None = None
) -> Window:
    """The [start, end) the query parameters name; `default` (the current UTC month when not
    given) when they name neither, one side open when only the other is given."""
    since, until = _moment(params, start, end=False), _moment(params, end, end=True)
    if since is None and until is None:
        return this_month() if default is None else default
    if since is not None and until is not None and since >= until:
        raise ValidationFailed(
            f"{start} must be before {end}", details={start: [f"Must be before {end}."]}
        )
    return since, until


def window_parameters(start: str = "from", end: str = "to", *, default: str) -> list:
    return [
        OpenApiParameter(
            start,
            OpenApiTypes.STR,
            description=f"ISO 8601 date or datetime: from this moment on. {default}",
        ),
        OpenApiParameter(
            end,
            OpenApiTypes.STR,
            description="ISO 8601 date or datetime: before this moment (a date counts the "
            f"whole day). Must be after `{start}`.",
        ),
    ]


# -- roll-ups ---------------------------------------------------------------------------------

# What each roll-up groups by, and the names it reads with its key in the same query
# (a join, no query per row).
GROUPS: dict[str, dict[str, str]] = {
    "agent": {"agentId": "agent_id", "agentName": "agent__name"},
    "project": {"projectId": "project_id", "projectName": "project__name"},
    "issue": {"issueId": "issue_id", "identifier": "issue__identifier", "title": "issue__title"},
    "model": {"provider": "provider", "model": "model"},
}


def totals(costs: QuerySet) -> dict[str, Any]:
    """Spend (exact cents), tokens and the number of events: one aggregate query."""
    return costs.aggregate(
        spend=Coalesce(Sum("cost_cents"), Decimal(0)),
        input_tokens=Coalesce(Sum("input_tokens"), 0),
        output_tokens=Coalesce(Sum("output_tokens"), 0),
        events=Count("id"),
    )


def rollup(costs: QuerySet, group: str) -> list[dict[str, Any]]:
    """The costs grouped by `group` (one of GROUPS), biggest spend first: one aggregate query.
    Each row has the group's wire names, `spend` in exact cents, tokens and `events`. Costs
    that name no project (or issue) are one row whose id is null, so the rows add up to the
    total."""
    names = GROUPS[group]
    columns = list(names.values())
    keys = [column for column in columns if not column.count("__")]
    rows = (
        costs.order_by()
        .values(*columns)
        .annotate(
            spend=Sum("cost_cents"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            events=Count("id"),
        )
        .order_by("-spend", *keys)
    )
    return [
        {
            **{wire: row[column] for wire, column in names.items()},
            "spend": row["spend"],
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
            "events": row["events"],
        }
        for row in rows
    ]


def in_cents(row: dict[str, Any]) -> dict[str, Any]:
    """A total or roll-up row as `/api` writes it: whole cents, camelCase."""
    rest = {k: v for k, v in row.items() if k not in ("spend", "input_tokens", "output_tokens")}
    return {
        **rest,
        "spendCents": whole_cents(row["spend"]),
        "inputTokens": row["input_tokens"],
        "outputTokens": row["output_tokens"],
    }


# -- serializers ------------------------------------------------------------------------------


class CostEventSerializer(CamelModelSerializer):
    """A cost event in Paperclip's shape (`costCents` in whole cents, as the wire writes
    them; the row keeps fractions)."""

    cost_cents = serializers.SerializerMethodField()
    billing_code = serializers.SerializerMethodField()

    class Meta:
        model = CostEvent
        fields = [
            "id",
            "company_id",
            "agent_id",
            "issue_id",
            "project_id",
            "heartbeat_run_id",
            "provider",
            "model",
            "input_tokens",
            "cached_input_tokens",
            "output_tokens",
            "cost_cents",
            "billing_code",
            "occurred_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_cost_cents(self, event: CostEvent) -> int:
        return whole_cents(Decimal(event.cost_cents))  # as created, it may still be an int

    def get_billing_code(self, event: CostEvent) -> str | None:
        return event.billing_code or None


class WholeNumberField(serializers.IntegerField):
    """A JSON integer, as Paperclip's validators take it: a string or a fraction is refused,
    not read as a number."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float) and not data.is_integer():
            self.fail("invalid")
        return super().to_internal_value(data)


class TextField(serializers.CharField):
    """A JSON string, as Paperclip's validators take it: a number is refused, not written as
    text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def _tokens() -> WholeNumberField:
    return WholeNumberField(min_value=0, max_value=MAX_TOKENS, required=False, default=0)


class CostEventCreateSerializer(CamelSerializer):
    """`POST .../cost-events`: Paperclip's body. The agent, issue and run must be of the
    company (an id of another company names nothing here)."""

    agent_id = CompanyScopedRelatedField(model=Agent, source="agent")
    issue_id = IssueRefField(required=False, allow_null=True, source="issue")
    heartbeat_run_id = CompanyScopedRelatedField(
        model=HeartbeatRun, required=False, allow_null=True, source="heartbeat_run"
    )
    provider = TextField(max_length=100)
    model = TextField(max_length=200)
    input_tokens = _tokens()
    cached_input_tokens = _tokens()
    output_tokens = _tokens()
    cost_cents = WholeNumberField(min_value=0, max_value=MAX_COST_CENTS)
    occurred_at = DateTimeField(required=False)
    billing_code = TextField(max_length=100, required=False, allow_blank=True, allow_null=True)

    def validate_billing_code(self, value: str | None) -> str:
        return value or ""


class CostSummarySerializer(serializers.Serializer):
    companyId = serializers.CharField()
    spendCents = serializers.IntegerField(help_text="Spend in the window, in whole cents")
    budgetCents = serializers.IntegerField(help_text="The company's monthly budget (0 = none)")
    utilizationPercent = serializers.FloatField(
        help_text="spendCents / budgetCents * 100, to 2 decimals (0 without a budget)"
    )


class SpendRowSerializer(serializers.Serializer):
    spendCents = serializers.IntegerField()
    inputTokens = serializers.IntegerField()
    outputTokens = serializers.IntegerField()
    events = serializers.IntegerField()


class AgentSpendSerializer(SpendRowSerializer):
    agentId = serializers.CharField()
    agentName = serializers.CharField()


class ProjectSpendSerializer(SpendRowSerializer):
    projectId = serializers.CharField(allow_null=True, help_text="null: costs of no project")
    projectName = serializers.CharField(allow_null=True)


class IssueSpendSerializer(SpendRowSerializer):
    issueId = serializers.CharField(allow_null=True, help_text="null: costs of no issue")
    identifier = serializers.CharField(allow_null=True)
    title = serializers.CharField(allow_null=True)


class ModelSpendSerializer(SpendRowSerializer):
    provider = serializers.CharField()
    model = serializers.CharField()


ROW_SERIALIZERS = {
    "agent": AgentSpendSerializer,
    "project": ProjectSpendSerializer,
    "issue": IssueSpendSerializer,
    "model": ModelSpendSerializer,
}


# -- views ------------------------------------------------------------------------------------


class CostEventFilter(django_filters.FilterSet):
    agentId = IdFilter(field_name="agent_id", prefix="agt", help_text="Costs of this agent")
    issueId = IdFilter(field_name="issue_id", prefix="iss", help_text="Costs of this issue")

    class Meta:
        model = CostEvent
        fields: list[str] = []


class CompanyCostsMixin:
    """The rows are the costs of the company in the path: `self.company` is resolved inside
    the caller's scope (another company is a 404 before anything is read)."""

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller
            return CostEvent.objects.none()
        return self.company.cost_events.all()


class CostEventViewSet(CompanyCostsMixin, ScopedViewSet):
    """Cost events: agents report their own, the board any agent's; any member reads them."""

    queryset = CostEvent.objects.all()
    serializer_class = CostEventCreateSerializer
    filterset_class = CostEventFilter
    # Newest first by when the cost occurred (the company/time index serves it).
    ordering_keys = (("occurred_at", True), ("id", True))

    @extend_schema(
        responses=CostEventSerializer(many=True),
        parameters=window_parameters(default="Without either: every cost."),
    )
    def list(self, request, company_pk: str):
        costs = self.filter_queryset(self.get_queryset())
        costs = costs.between(*window(request.query_params, default=(None, None)))
        page = self.paginate_queryset(costs)
        return self.get_paginated_response(CostEventSerializer(page, many=True).data)

    @extend_schema(request=CostEventCreateSerializer, responses={201: CostEventSerializer})
    def create(self, request, company_pk: str):
        """Report a cost: an agent its own (403 for another's), the board any agent's of the
        company. A report past a budget stops the scope at once (DESIGN §10)."""
        serializer = CostEventCreateSerializer(data=request.data, context={"company": self.company})
        serializer.is_valid(raise_exception=True)
        event = cost_record(actor=self.actor, company=self.company, data=serializer.validated_data)
        return Response(CostEventSerializer(event).data, status=status.HTTP_201_CREATED)


MONTH = "Without either: the current UTC month."


class CostRollupViewSet(CompanyCostsMixin, ScopedViewSet):
    """The company's spend over a window (`from`/`to`, the current UTC month by default): the
    total against its budget, and by agent, project, issue or model. Any member may read."""

    queryset = CostEvent.objects.all()
    pagination_class = None  # a roll-up is answered whole

    def _costs(self):
        return self.get_queryset().between(*window(self.request.query_params))

    def _rows(self, group: str) -> Response:
        return Response([in_cents(row) for row in rollup(self._costs(), group)])

    @extend_schema(responses=CostSummarySerializer, parameters=window_parameters(default=MONTH))
    @action(detail=False)
    def summary(self, request, company_pk: str):
        """Spend in the window against the company's monthly budget."""
        spend = totals(self._costs())["spend"]
        budget = self.company.budget_monthly_cents
        utilization = (spend * 100 / budget).quantize(Decimal("0.01")) if budget else Decimal(0)
        return Response(
            {
                "companyId": self.company.pk,
                "spendCents": whole_cents(spend),
                "budgetCents": budget,
                "utilizationPercent": float(utilization),
            }
        )

    @extend_schema(
        responses=AgentSpendSerializer(many=True), parameters=window_parameters(default=MONTH)
    )
    @action(detail=False, url_path="by-agent")
    def by_agent(self, request, company_pk: str):
        """Spend per agent, biggest first."""
        return self._rows("agent")

    @extend_schema(
        responses=ProjectSpendSerializer(many=True), parameters=window_parameters(default=MONTH)
    )
    @action(detail=False, url_path="by-project")
    def by_project(self, request, company_pk: str):
        """Spend per project (of the issue when the cost was reported), biggest first."""
        return self._rows("project")

    @extend_schema(
        responses=IssueSpendSerializer(many=True), parameters=window_parameters(default=MONTH)
    )
    @action(detail=False, url_path="by-issue")
    def by_issue(self, request, company_pk: str):
        """Spend per issue, biggest first."""
        return self._rows("issue")

    @extend_schema(
        responses=ModelSpendSerializer(many=True), parameters=window_parameters(default=MONTH)
    )
    @action(detail=False, url_path="by-model")
    def by_model(self, request, company_pk: str):
        """Spend per provider and model, biggest first."""
        return self._rows("model")
