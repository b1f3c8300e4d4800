"""Webhook endpoints (DESIGN §9): the board says where the company's events are POSTed and
which ones. The signing secret is answered at creation and rotation only; `test` queues a `ping`;
`deliveries` is the endpoint's delivery log, newest first, and `redeliver` sends a logged event
again."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from agents import services
from agents.events import ALL, EVENT_TYPES
from agents.models import WebhookDelivery, WebhookEndpoint
from paperclip.api.serializers import CamelModelSerializer
from paperclip.api.viewsets import ScopedViewSet, found


@extend_schema_field(
    {"type": "array", "items": {"type": "string", "enum": [*EVENT_TYPES, ALL]}, "minItems": 1}
)
class EventNamesField(serializers.ListField):
    """Event names, or `["*"]`; which names are known is the service's to check (a 400 naming
    `events`), so the admin and the API refuse the same ones."""

    child = serializers.CharField(max_length=64)


class WebhookSerializer(CamelModelSerializer):
    url = serializers.CharField(max_length=500)
    events = EventNamesField()

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "company_id",
            "url",
            "events",
            "description",
            "active",
            "disabled_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "company_id", "disabled_reason", "created_at", "updated_at"]


class WebhookWithSecretSerializer(WebhookSerializer):
    """The answer to a creation or a rotation: the one time the signing secret is shown."""

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]
        read_only_fields = [*WebhookSerializer.Meta.read_only_fields, "secret"]


class WebhookDeliverySerializer(CamelModelSerializer):
    """One delivery attempt, as the delivery log shows it."""

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "attempt",
            "status",
            "response_status",
            "response_body",
            "duration_ms",
            "error",
            "next_attempt_at",
            "created_at",
        ]
        read_only_fields = fields


# The handlers both dialects serve: `/v1` subclasses this with its own base and serializers
# (`serializer_class`, `secret_serializer_class`), so a rule added here reaches both. Handlers
# take `**kwargs` because `/v1` nests every route under its company. (A comment, not a
# docstring: a docstring would become every operation's description in the schema.)
class WebhookViewSet(ScopedViewSet):
    queryset = WebhookEndpoint.objects.all()
    serializer_class = WebhookSerializer
    secret_serializer_class = WebhookWithSecretSerializer

    def list(self, request, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.serializer_class(page, many=True).data)

    @extend_schema(request=WebhookSerializer, responses={201: WebhookWithSecretSerializer})
    def create(self, request, **kwargs):
        """Create an endpoint. Its signing secret is in this answer only."""
        serializer = self.serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        webhook = services.webhook_create(
            actor=self.actor, company=self.company, data=serializer.validated_data
        )
        return Response(self.secret_serializer_class(webhook).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, **kwargs):
        return Response(self.serializer_class(self.get_object()).data)

    def partial_update(self, request, **kwargs):
        webhook = self.get_object()
        serializer = self.serializer_class(webhook, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        webhook = services.webhook_update(
            actor=self.actor, webhook=webhook, changes=serializer.validated_data
        )
        return Response(self.serializer_class(webhook).data)

    def destroy(self, request, **kwargs):
        services.webhook_delete(actor=self.actor, webhook=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=WebhookWithSecretSerializer)
    def rotate_secret(self, request, **kwargs):
        """A new signing secret, in this answer only; the old one stops signing at once."""
        webhook = services.webhook_rotate_secret(actor=self.actor, webhook=self.get_object())
        return Response(self.secret_serializer_class(webhook).data)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    def test(self, request, **kwargs):
        """Queue a `ping` event to the endpoint; answers its pending delivery."""
        delivery = services.webhook_test(actor=self.actor, webhook=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    def deliveries(self, request, **kwargs):
        """The endpoint's delivery log: every attempt, newest first, in cursor pages."""
        webhook = self.get_object()
        page = self.paginate_queryset(webhook.deliveries.all())
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    def redeliver(self, request, delivery_pk: str, **kwargs):
        """Send the delivery's event again now, with the same `webhook-id`: the event's next
        attempt at this endpoint (numbering continues). Answers the pending attempt."""
        delivery = found(self.get_object().deliveries.by_ref(delivery_pk))
        redelivery = services.webhook_redeliver(actor=self.actor, delivery=delivery)
        return Response(WebhookDeliverySerializer(redelivery).data, status=status.HTTP_202_ACCEPTED)
