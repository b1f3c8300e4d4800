"""Agent endpoints."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from agents import services
from agents.api.serializers import (
    AgentKeyCreatedSerializer,
    AgentKeyCreateSerializer,
    AgentMeSerializer,
    AgentSerializer,
)
from agents.models import Agent
from paperclip.api.errors import Forbidden, NotFound
from paperclip.api.permissions import IsActor, IsBoard
from paperclip.api.viewsets import ScopedViewSet

BOARD_ONLY_ACTIONS = {"create", "partial_update", "keys", "pause", "resume", "terminate"}


class AgentViewSet(ScopedViewSet):
    queryset = Agent.objects.all()
    serializer_class = AgentSerializer
    ordering_keys = (("name", False), ("id", False))

    def get_permissions(self):
        if self.action in BOARD_ONLY_ACTIONS:
            return [IsBoard()]
        return [IsActor()]

    def get_object(self) -> Agent:
        agent = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if agent is None:
            raise NotFound()
        self.check_object_permissions(self.request, agent)
        return agent

    @extend_schema(responses=AgentMeSerializer)
    @action(detail=False, methods=["get"])
    def me(self, request):
        """The calling agent, with its chain of command (direct manager first)."""
        if not self.actor.is_agent:
            raise Forbidden("Only agents have a /agents/me; board users see /users/me")
        return Response(AgentMeSerializer(self.actor.agent).data)

    def list(self, request, company_pk: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(AgentSerializer(page, many=True).data)

    @extend_schema(request=AgentSerializer, responses={201: AgentSerializer})
    def create(self, request, company_pk: str):
        self.require_company_write()
        serializer = AgentSerializer(data=request.data, context={"company": self.company})
        serializer.is_valid(raise_exception=True)
        agent = services.agent_create(
            actor=self.actor, company=self.company, data=serializer.validated_data
        )
        return Response(AgentSerializer(agent).data, status=status.HTTP_201_CREATED)

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
