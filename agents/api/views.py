"""Agent endpoints."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from agents import services
from agents.api.filters import HeartbeatRunFilter
from agents.api.serializers import (
    AgentCreatedSerializer,
    AgentKeyCreatedSerializer,
    AgentKeyCreateSerializer,
    AgentMeSerializer,
    AgentSerializer,
    HeartbeatRunSerializer,
    RunFinishSerializer,
    WakeupSerializer,
    WebhookSecretSerializer,
    WokenRunSerializer,
)
from agents.models import Agent, HeartbeatRun
from paperclip.api.viewsets import ScopedViewSet
from paperclip.errors import NotAllowed


class AgentViewSet(ScopedViewSet):
    queryset = Agent.objects.all()
    serializer_class = AgentSerializer
    ordering_keys = (("name", False), ("id", False))

    @extend_schema(responses=AgentMeSerializer)
    @action(detail=False, methods=["get"])
    def me(self, request):
        """The calling agent, with its chain of command (direct manager first)."""
        if not self.actor.is_agent:
            raise NotAllowed("Only agents have a /agents/me; board users see /users/me")
        return Response(AgentMeSerializer(self.actor.agent).data)

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


class HeartbeatRunViewSet(ScopedViewSet):
    """Runs: read by the company; started, renewed and finished by their agent (or the board)."""

    queryset = HeartbeatRun.objects.all()
    serializer_class = HeartbeatRunSerializer
    filterset_class = HeartbeatRunFilter

    def list(self, request, company_pk: str):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(HeartbeatRunSerializer(page, many=True).data)

    def retrieve(self, request, pk: str):
        return Response(HeartbeatRunSerializer(self.get_object()).data)

    @extend_schema(request=None, responses=HeartbeatRunSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request, pk: str):
        run = services.run_start(actor=self.actor, run=self.get_object())
        return Response(HeartbeatRunSerializer(run).data)

    @extend_schema(request=None, responses=HeartbeatRunSerializer)
    @action(detail=True, methods=["post"])
    def heartbeat(self, request, pk: str):
        """Renew the lease; the answer says `leaseExpiresAt` and `cancelRequested`."""
        run = services.run_heartbeat(actor=self.actor, run=self.get_object())
        return Response(HeartbeatRunSerializer(run).data)

    @extend_schema(request=RunFinishSerializer, responses=HeartbeatRunSerializer)
    @action(detail=True, methods=["post"])
    def finish(self, request, pk: str):
        serializer = RunFinishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        run = services.run_finish(
            actor=self.actor,
            run=self.get_object(),
            outcome=data["status"],
            usage=data["usage"],
            result=data["result"],
            error=data["error"],
        )
        return Response(HeartbeatRunSerializer(run).data)

    @extend_schema(request=None, responses=HeartbeatRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk: str):
        run = services.run_cancel(actor=self.actor, run=self.get_object())
        return Response(HeartbeatRunSerializer(run).data)
