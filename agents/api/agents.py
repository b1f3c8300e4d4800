"""Agents: the board hires and manages them; an agent reads itself and wakes itself."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from agents import selectors, services
from agents.api.runs import WokenRunSerializer
from agents.models import (
    Agent,
    AgentApiKey,
    HeartbeatRun,
    PauseReason,
    Team,
    masked_adapter_config,
)
from companies.api.companies import BudgetSerializer
from paperclip.api.fields import CompanyScopedRelatedField
from paperclip.api.serializers import CamelModelSerializer, CamelSerializer
from paperclip.api.viewsets import ScopedViewSet, found
from paperclip.ids import parse_id


@extend_schema_field({"type": "object", "additionalProperties": {}})
class JSONObjectField(serializers.JSONField):
    """A JSON column that holds an object: a list, a string or a number is a 400 naming the
    field, not a 500 when the code reads it as a dict."""

    default_error_messages = {"not_an_object": "Must be a JSON object."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_an_object")
        return value


class AdapterConfigField(JSONObjectField):
    """An agent's adapter settings, with the values of a process agent's `env` written as
    `SECRET_MASK`: they may hold credentials, and every member of the company reads agents.
    Sent back unchanged, a masked value keeps what is stored (`services.agent_update`)."""

    def to_representation(self, value):
        return masked_adapter_config(value)


class AgentSerializer(CamelModelSerializer):
    reports_to = CompanyScopedRelatedField(
        model=Agent, required=False, allow_null=True, source="reports_to"
    )
    team_id = CompanyScopedRelatedField(model=Team, required=False, allow_null=True, source="team")
    adapter_config = AdapterConfigField(required=False)
    permissions = JSONObjectField(required=False)
    pause_reason = serializers.SerializerMethodField()

    class Meta:
        model = Agent
        fields = [
            "id",
            "company_id",
            "name",
            "role",
            "title",
            "reports_to",
            "team_id",
            "status",
            "pause_reason",
            "capabilities",
            "adapter_type",
            "adapter_config",
            "permissions",
            "budget_monthly_cents",
            "spent_monthly_cents",
            "last_heartbeat_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "company_id",
            "status",
            "spent_monthly_cents",
            "last_heartbeat_at",
            "created_at",
            "updated_at",
        ]
        # Name uniqueness is case-insensitive per company; the service checks it with the
        # company known, so the model's constraint is not re-validated here.
        validators: list = []

    @extend_schema_field(
        {"type": "string", "enum": PauseReason.values, "nullable": True, "readOnly": True}
    )
    def get_pause_reason(self, agent: Agent) -> str | None:
        """Why a paused agent is paused (`manual`: the board; `budget`: its budget stopped
        it); null when it is not paused."""
        return (agent.pause_reason or None) if agent.status == Agent.Status.PAUSED else None


class AgentCreatedSerializer(AgentSerializer):
    """The hire's answer: the one time the wake-signing secret is shown."""

    class Meta(AgentSerializer.Meta):
        fields = [*AgentSerializer.Meta.fields, "webhook_secret"]


class ChainLinkSerializer(CamelModelSerializer):
    class Meta:
        model = Agent
        fields = ["id", "name", "role", "title"]


class AgentMeSerializer(AgentSerializer):
    chain_of_command = serializers.SerializerMethodField()

    class Meta(AgentSerializer.Meta):
        fields = [*AgentSerializer.Meta.fields, "chain_of_command"]

    def get_chain_of_command(self, agent: Agent) -> list[dict]:
        return ChainLinkSerializer(agent.chain_of_command(), many=True).data


class AgentKeyCreateSerializer(CamelSerializer):
    name = serializers.CharField(max_length=100, required=False, default="default")


class AgentKeyCreatedSerializer(CamelModelSerializer):
    """The one answer that carries the plain token; it is never shown again."""

    token = serializers.CharField(read_only=True)

    class Meta:
        model = AgentApiKey
        fields = ["id", "name", "token", "created_at"]


WAKE_ID_KEYS = {"taskId": "iss", "issueId": "iss", "commentId": "cmt", "approvalId": "apr"}


class WakeupSerializer(CamelSerializer):
    source = serializers.ChoiceField(
        choices=HeartbeatRun.Source.choices, default=HeartbeatRun.Source.ON_DEMAND
    )
    reason = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    payload = serializers.DictField(required=False, default=dict)
    idempotency_key = serializers.CharField(
        max_length=200, required=False, allow_null=True, default=None
    )

    def validate_payload(self, value: dict) -> dict:
        """Ids in the payload become the run's context (and its issue): they must look right."""
        parsed = {key: parse_id(value[key], p) for key, p in WAKE_ID_KEYS.items() if key in value}
        bad = {
            key: [f"Expected an id like {WAKE_ID_KEYS[key]}_... (or its UUID)"]
            for key, pk in parsed.items()
            if pk is None
        }
        if bad:
            raise serializers.ValidationError(bad)
        return {**value, **parsed}


class WebhookSecretSerializer(CamelSerializer):
    webhook_secret = serializers.CharField(read_only=True)


class AgentViewSet(ScopedViewSet):
    queryset = Agent.objects.all()
    serializer_class = AgentSerializer
    ordering_keys = (("name", False), ("id", False))

    def get_queryset(self):
        return super().get_queryset().with_spend()  # `spentMonthlyCents`, no query per agent

    @extend_schema(responses=AgentMeSerializer)
    @action(detail=False, methods=["get"])
    def me(self, request):
        """The calling agent, with its chain of command (direct manager first)."""
        return Response(AgentMeSerializer(selectors.agent_me(self.actor)).data)

    def list(self, request, company_pk: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(AgentSerializer(page, many=True).data)

    @extend_schema(request=AgentSerializer, responses={201: AgentCreatedSerializer})
    def create(self, request, company_pk: str):
        serializer = AgentSerializer(data=request.data, context={"company": self.company})
        serializer.is_valid(raise_exception=True)
        agent = services.agent_create(
            actor=self.actor, company=self.company, data=serializer.validated_data
        )
        return Response(AgentCreatedSerializer(agent).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk: str):
        return Response(AgentSerializer(self.get_object()).data)

    def partial_update(self, request, pk: str):
        agent = self.get_object()
        serializer = AgentSerializer(
            agent, data=request.data, partial=True, context={"company": agent.company}
        )
        serializer.is_valid(raise_exception=True)
        agent = services.agent_update(
            actor=self.actor, agent=agent, changes=serializer.validated_data
        )
        return Response(AgentSerializer(agent).data)

    @extend_schema(request=BudgetSerializer, responses=AgentSerializer)
    @action(detail=True, methods=["patch"])
    def budgets(self, request, pk: str):
        """Board only: set the agent's monthly budget (`budgetMonthlyCents`, 0 = none). Raised
        above this month's spend, a budget stop is lifted (the agent resumes, its pending
        override is withdrawn); lowered to or below it, the agent stops now (`pauseReason:
        budget`, one `budget_override_required` approval) (DESIGN §10)."""
        from issues.services.costs import budget_set  # costs build on agents

        agent = self.get_object()
        serializer = BudgetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        budget_set(
            actor=self.actor, row=agent, cents=serializer.validated_data["budget_monthly_cents"]
        )
        # Read again: the stop or the resume changed the agent on rows of their own.
        return Response(AgentSerializer(found(self.get_queryset().filter(pk=agent.pk))).data)

    @extend_schema(request=AgentKeyCreateSerializer, responses={201: AgentKeyCreatedSerializer})
    @action(detail=True, methods=["post"])
    def keys(self, request, pk: str):
        """Create an API key. The token is in this answer only."""
        serializer = AgentKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, token = services.agent_key_create(
            actor=self.actor, agent=self.get_object(), name=serializer.validated_data["name"]
        )
        key.token = token
        return Response(AgentKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=AgentSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk: str):
        agent = services.agent_pause(actor=self.actor, agent=self.get_object())
        return Response(AgentSerializer(agent).data)

    @extend_schema(request=None, responses=AgentSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk: str):
        agent = services.agent_resume(actor=self.actor, agent=self.get_object())
        return Response(AgentSerializer(agent).data)

    @extend_schema(request=None, responses=AgentSerializer)
    @action(detail=True, methods=["post"])
    def terminate(self, request, pk: str):
        """End the agent for good; its keys are revoked."""
        agent = services.agent_terminate(actor=self.actor, agent=self.get_object())
        return Response(AgentSerializer(agent).data)

    @extend_schema(request=None, responses={201: WebhookSecretSerializer})
    @action(detail=True, methods=["post"], url_path="webhook-secret")
    def webhook_secret(self, request, pk: str):
        """Rotate the secret that signs wake deliveries; shown in this answer only."""
        secret = services.agent_webhook_secret_rotate(actor=self.actor, agent=self.get_object())
        return Response({"webhookSecret": secret}, status=status.HTTP_201_CREATED)

    def _wake(self, request, pk: str, data: dict) -> Response:
        agent = self.get_object()
        serializer = WakeupSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        run = services.agent_wakeup(
            actor=self.actor,
            agent=agent,
            source=serializer.validated_data["source"],
            reason=serializer.validated_data["reason"],
            payload=serializer.validated_data["payload"],
            idempotency_key=serializer.validated_data["idempotency_key"],
        )
        return Response(WokenRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=WakeupSerializer, responses={202: WokenRunSerializer})
    @action(detail=True, methods=["post"])
    def wakeup(self, request, pk: str):
        """Wake an agent: 202 with its (new or coalesced) run and a run token."""
        return self._wake(request, pk, request.data)

    @extend_schema(request=None, responses={202: WokenRunSerializer})
    @action(detail=True, methods=["post"], url_path="heartbeat/invoke")
    def invoke(self, request, pk: str):
        """Paperclip's on-demand heartbeat: a wakeup with source `on_demand`."""
        return self._wake(
            request, pk, {"source": HeartbeatRun.Source.ON_DEMAND, "reason": "on_demand"}
        )
