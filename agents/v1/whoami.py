"""`GET /v1/whoami`: who the credential speaks for."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.selectors import whoami
from paperclip.api.fields import DateTimeField
from paperclip.v1.renderers import EnvelopeRenderer

ACTOR_TYPES = ["agent", "user"]


class WhoAmISerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ACTOR_TYPES)
    id = serializers.CharField()
    name = serializers.CharField()
    companyIds = serializers.ListField(child=serializers.CharField())
    tokenName = serializers.CharField(allow_null=True)
    createdAt = DateTimeField(allow_null=True)


class WhoAmIView(APIView):
    renderer_classes = [EnvelopeRenderer]

    @extend_schema(responses=WhoAmISerializer, tags=["v1"])
    def get(self, request):
        return Response(WhoAmISerializer(whoami(request.auth)).data)
