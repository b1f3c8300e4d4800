"""`/v1` costs (DESIGN §10): the company's spend over `since`/`until` (the current UTC month by
default) in USD, in total or grouped by agent, project, task or model. The same roll-ups as
`/api`'s (`issues.api.costs`), in `/v1`'s envelope with ids as stored."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from issues.api.costs import CompanyCostsMixin, rollup, totals, window, window_parameters
from issues.models import CostEvent
from issues.services.costs import usd_of
from paperclip.api.fields import DateTimeField
from paperclip.api.viewsets import ID, route
from paperclip.errors import ValidationFailed
from paperclip.v1.viewsets import V1ViewSet

# 003's names for the groups: a task is what `/api` calls an issue.
GROUP_BY = {"agent": "agent", "project": "project", "task": "issue", "model": "model"}
# `/api`'s names in a row that `/v1` writes otherwise.
RENAMED = {"issueId": "taskId", "agentName": "name", "projectName": "name"}


def in_usd(row: dict[str, Any]) -> dict[str, Any]:
    """A total or roll-up row as `/v1` writes it: USD, camelCase, 003's names."""
    rest = {k: v for k, v in row.items() if k not in ("spend", "input_tokens", "output_tokens")}
    return {
        **{RENAMED.get(k, k): v for k, v in rest.items()},
        "usd": usd_of(row["spend"]),
        "inputTokens": row["input_tokens"],
        "outputTokens": row["output_tokens"],
    }


def moment(value):
    return None if value is None else DateTimeField().to_representation(value)


class V1CostGroupSerializer(serializers.Serializer):
    """One group: its key (`agentId` + `name`, `projectId` + `name`, `taskId` + `identifier` +
    `title`, or `provider` + `model`), its spend and tokens."""

    agentId = serializers.CharField(required=False)
    projectId = serializers.CharField(required=False, allow_null=True)
    taskId = serializers.CharField(required=False, allow_null=True)
    name = serializers.CharField(required=False, allow_null=True)
    identifier = serializers.CharField(required=False, allow_null=True)
    title = serializers.CharField(required=False, allow_null=True)
    provider = serializers.CharField(required=False)
    model = serializers.CharField(required=False)
    usd = serializers.FloatField()
    inputTokens = serializers.IntegerField()
    outputTokens = serializers.IntegerField()
    events = serializers.IntegerField()


class V1CostsSerializer(serializers.Serializer):
    companyId = serializers.CharField()
    since = DateTimeField(allow_null=True)
    until = DateTimeField(allow_null=True)
    groupBy = serializers.ChoiceField(choices=list(GROUP_BY), allow_null=True)
    usd = serializers.FloatField(help_text="Spend in the window, in USD")
    inputTokens = serializers.IntegerField()
    outputTokens = serializers.IntegerField()
    events = serializers.IntegerField()
    groups = V1CostGroupSerializer(
        many=True, allow_null=True, help_text="Biggest spend first; null without `groupBy`"
    )


class CostViewSet(CompanyCostsMixin, V1ViewSet):
    """One object, not a page: the action is not named `list`, so the schema says so."""

    queryset = CostEvent.objects.all()
    pagination_class = None  # a roll-up is answered whole

    @extend_schema(
        tags=["v1"],
        responses=V1CostsSerializer,
        parameters=[
            OpenApiParameter(
                "groupBy", OpenApiTypes.STR, enum=list(GROUP_BY), description="Group the spend"
            ),
            *window_parameters("since", "until", default="Without either: the current UTC month."),
        ],
    )
    def spend(self, request, company_pk: str):
        """The company's spend in USD over the window, in total and, with `groupBy`, per
        agent, project, task or model (biggest first)."""
        group = request.query_params.get("groupBy")
        if group is not None and group not in GROUP_BY:
            raise ValidationFailed(
                f"groupBy must be one of {', '.join(GROUP_BY)}",
                details={"groupBy": [f"One of {', '.join(GROUP_BY)}."]},
            )
        since, until = window(request.query_params, "since", "until")
        costs = self.get_queryset().between(since, until)
        total = totals(costs)
        body = {
            "companyId": self.company.pk,
            "since": moment(since),
            "until": moment(until),
            "groupBy": group,
            "usd": usd_of(total["spend"]),
            "inputTokens": total["input_tokens"],
            "outputTokens": total["output_tokens"],
            "events": total["events"],
            "groups": None,
        }
        if group is not None:
            body["groups"] = [in_usd(row) for row in rollup(costs, GROUP_BY[group])]
        return Response(body)


urlpatterns = [
    route(
        rf"companies/(?P<company_pk>{ID})/costs",
        CostViewSet.as_view({"get": "spend"}),
        name="v1-costs",
    ),
]
