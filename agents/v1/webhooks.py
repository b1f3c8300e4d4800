"""`/v1` webhook endpoints (DESIGN §9): `/api`'s webhooks under `/v1/companies/{cid}/webhooks`,
through the same services (board only; the secret answered at creation and rotation only), in
`/v1`'s envelope with ids as stored; the delivery log in `/v1`'s pages."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view

from agents.api import webhooks as api
from paperclip.api.viewsets import ID, route
from paperclip.v1.viewsets import V1ViewSet


class V1WebhookSerializer(api.WebhookSerializer):
    """An endpoint as `/v1` writes it: `/api`'s fields, ids as stored (`whk_...`)."""


class V1WebhookWithSecretSerializer(api.WebhookWithSecretSerializer):
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
# `/api`'s handlers (one copy of them) on `/v1`'s base: its envelope, pages and parsers.
class WebhookViewSet(V1ViewSet, api.WebhookViewSet):
    serializer_class = V1WebhookSerializer
    secret_serializer_class = V1WebhookWithSecretSerializer

    # Redeclared only for the schema: `extend_schema_view` does not replace the response
    # `/api`'s own decorator names on this one.
    @extend_schema(tags=["v1"], request=None, responses=V1WebhookWithSecretSerializer)
    def rotate_secret(self, request, **kwargs):
        """A new signing secret, in this answer only; the old one stops signing at once."""
        return super().rotate_secret(request, **kwargs)


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
