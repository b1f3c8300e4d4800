from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.delivery import check_wake_url
from agents.models import Agent, AgentApiKey, HeartbeatRun, Team
from agents.runs import mint_run_token
from paperclip.api.fields import CompanyScopedRelatedField
from paperclip.api.serializers import CamelModelSerializer, CamelSerializer
from paperclip.ids import looks_like_id
from paperclip.targets import TargetRefused


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


class AgentSerializer(CamelModelSerializer):
    reports_to = CompanyScopedRelatedField(
        model=Agent, required=False, allow_null=True, source="reports_to"
    )
    team_id = CompanyScopedRelatedField(model=Team, required=False, allow_null=True, source="team")
    adapter_config = JSONObjectField(required=False)
    permissions = JSONObjectField(required=False)

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

    def validate_adapter_config(self, value: dict) -> dict:
        """A wake URL, when given, must be one we can POST to (agents without one poll), at an
        address we may send to (paperclip.targets; checked again at each delivery)."""
        url = value.get("url")
        if url is None:
            return value
        try:
            check_wake_url(url)
        except TargetRefused as exc:
            raise serializers.ValidationError({"url": [exc.reason]}) from None
        return value

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


class AgentKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, default="default")


class AgentKeyCreatedSerializer(CamelModelSerializer):
    """The one answer that carries the plain token; it is never shown again."""

    token = serializers.CharField(read_only=True)

    class Meta:
        model = AgentApiKey
        fields = ["id", "name", "token", "created_at"]


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
        ]
        read_only_fields = fields

    def get_cancel_requested(self, run: HeartbeatRun) -> bool:
        return run.cancel_requested_at is not None

    def get_is_live(self, run: HeartbeatRun) -> bool:
        return run.is_live


class WokenRunSerializer(HeartbeatRunSerializer):
    """The answer to a wakeup: the run, and the token that speaks for it."""

    run_token = serializers.SerializerMethodField()

    class Meta(HeartbeatRunSerializer.Meta):
        fields = [*HeartbeatRunSerializer.Meta.fields, "run_token"]
        read_only_fields = fields

    def get_run_token(self, run: HeartbeatRun) -> str:
        return mint_run_token(run)


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
        bad = {
            key: [f"Expected an id like {prefix}_..."]
            for key, prefix in WAKE_ID_KEYS.items()
            if key in value
            and not (isinstance(value[key], str) and looks_like_id(value[key], prefix))
        }
        if bad:
            raise serializers.ValidationError(bad)
        return value


class RunFinishSerializer(CamelSerializer):
    status = serializers.ChoiceField(choices=HeartbeatRun.FINISH_STATUSES)
    usage = serializers.DictField(required=False, default=dict)
    result = serializers.DictField(required=False, default=dict)
    error = serializers.CharField(required=False, allow_blank=True, default="", max_length=20_000)


class WebhookSecretSerializer(CamelSerializer):
    webhook_secret = serializers.CharField(read_only=True)
