from __future__ import annotations

from rest_framework import serializers

from agents.models import Agent, AgentApiKey, Team
from paperclip.api.fields import CompanyScopedRelatedField
from paperclip.api.serializers import CamelModelSerializer


class AgentSerializer(CamelModelSerializer):
    reports_to = CompanyScopedRelatedField(
        model=Agent, required=False, allow_null=True, source="reports_to"
    )
    team_id = CompanyScopedRelatedField(model=Team, required=False, allow_null=True, source="team")

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

    def validate_name(self, value: str) -> str:
        company = self.context.get("company")
        if company is None:
            return value
        clash = Agent.objects.for_company(company.pk).filter(name__iexact=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("An agent with this name already exists.")
        return value


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


class AgentKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, default="default")


class AgentKeyCreatedSerializer(CamelModelSerializer):
    """The one answer that carries the plain token; it is never shown again."""

    token = serializers.CharField(read_only=True)

    class Meta:
        model = AgentApiKey
        fields = ["id", "name", "token", "created_at"]
