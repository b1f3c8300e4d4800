"""`/v1` webhook endpoints (DESIGN §9): `/api`'s webhooks under `/v1/companies/{cid}/webhooks`,
through the same services (board only; the secret answered at creation and rotation only), in
`/v1`'s envelope with ids as stored; the delivery log in `/v1`'s pages."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response

from agents import services
from agents.api.webhooks import (
    WebhookDeliverySerializer,
    WebhookSerializer,
    WebhookWithSecretSerializer,
)
from agents.models import WebhookEndpoint
from paperclip.api.viewsets import ID, found, route
from paperclip.v1.viewsets import V1ViewSet


class V1WebhookSerializer(WebhookSerializer):
    """An endpoint as `/v1` writes it: `/api`'s fields, ids as stored (`whk_...`)."""


class V1WebhookWithSecretSerializer(WebhookWithSecretSerializer):
    """`/v1`'s answer to a creation or a rotation, with the secret."""


@extend_schema_view(
    list=extend_schema(tags=["v1"]),
    create=extend_schema(
        tags=["v1"],
        request=V1WebhookSerializer,
        responses={201: V1WebhookWithSecretSerializer},
    ),
    retrieve=extend_schema(tags=["v1"]),
    partial_update=extend_schema(tags=["v1"]),
    destroy=extend_schema(tags=["v1"]),
)
class WebhookViewSet(V1ViewSet):
    queryset = WebhookEndpoint.objects.all()
    serializer_class = V1WebhookSerializer

    def list(self, request, company_pk: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(V1WebhookSerializer(page, many=True).data)

    def create(self, request, company_pk: str):
        """Create an endpoint. Its signing secret is in this answer only."""
        serializer = V1WebhookSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        webhook = services.webhook_create(
            actor=self.actor, company=self.company, data=serializer.validated_data
        )
        return Response(V1WebhookWithSecretSerializer(webhook).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, company_pk: str, pk: str):
        return Response(V1WebhookSerializer(self.get_object()).data)

    def partial_update(self, request, company_pk: str, pk: str):
        webhook = self.get_object()
        serializer = V1WebhookSerializer(webhook, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        webhook = services.webhook_update(
            actor=self.actor, webhook=webhook, changes=serializer.validated_data
        )
        return Response(V1WebhookSerializer(webhook).data)

    def destroy(self, request, company_pk: str, pk: str):
        services.webhook_delete(actor=self.actor, webhook=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(tags=["v1"], request=None, responses=V1WebhookWithSecretSerializer)
    def rotate_secret(self, request, company_pk: str, pk: str):
        """A new signing secret, in this answer only; the old one stops signing at once."""
        webhook = services.webhook_rotate_secret(actor=self.actor, webhook=self.get_object())
        return Response(V1WebhookWithSecretSerializer(webhook).data)

    @extend_schema(tags=["v1"], request=None, responses={202: WebhookDeliverySerializer})
    def test(self, request, company_pk: str, pk: str):
        """Queue a `ping` event to the endpoint; answers its pending delivery."""
        delivery = services.webhook_test(actor=self.actor, webhook=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(tags=["v1"], responses=WebhookDeliverySerializer(many=True))
    def deliveries(self, request, company_pk: str, pk: str):
        """The endpoint's delivery log: every attempt, newest first, in cursor pages."""
        webhook = self.get_object()
        page = self.paginate_queryset(webhook.deliveries.all())
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(tags=["v1"], request=None, responses={202: WebhookDeliverySerializer})
    def redeliver(self, request, company_pk: str, pk: str, delivery_pk: str):
        """Send the delivery's event again now, with the same `webhook-id`: the event's next
        attempt at this endpoint (numbering continues). Answers the pending attempt."""
        delivery = found(self.get_object().deliveries.by_ref(delivery_pk))
        redelivery = services.webhook_redeliver(actor=self.actor, delivery=delivery)
        return Response(WebhookDeliverySerializer(redelivery).data, status=status.HTTP_202_ACCEPTED)


COMPANY = rf"companies/(?P<company_pk>{ID})"
WEBHOOK = rf"{COMPANY}/webhooks/(?P<pk>{ID})"

urlpatterns = [
    route(
        f"{COMPANY}/webhooks",
        WebhookViewSet.as_view({"get": "list", "post": "create"}),
        name="v1-webhooks",
    ),
    route(
        WEBHOOK,
        WebhookViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="v1-webhook",
    ),
    route(
        f"{WEBHOOK}/rotate-secret",
        WebhookViewSet.as_view({"post": "rotate_secret"}),
        name="v1-webhook-rotate-secret",
    ),
    route(f"{WEBHOOK}/test", WebhookViewSet.as_view({"post": "test"}), name="v1-webhook-test"),
    route(
        f"{WEBHOOK}/deliveries",
        WebhookViewSet.as_view({"get": "deliveries"}),
        name="v1-webhook-deliveries",
    ),
    route(
        rf"{WEBHOOK}/deliveries/(?P<delivery_pk>{ID})/redeliver",
        WebhookViewSet.as_view({"post": "redeliver"}),
        name="v1-webhook-delivery-redeliver",
    ),
]
