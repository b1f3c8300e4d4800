"""Teams (DESIGN §8): the board groups a company's agents; an agent joins one through its
`teamId` (`PATCH /api/agents/{id}`). Anyone of the company reads them; the board writes."""

from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response

from agents import services
from agents.models import Team
from paperclip.api.serializers import CamelModelSerializer
from paperclip.api.viewsets import ScopedViewSet


class TeamSerializer(CamelModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "company_id", "name", "description", "created_at", "updated_at"]
        read_only_fields = ["id", "company_id", "created_at", "updated_at"]
        # Names are unique per company in any case; the service checks it with the company
        # known, so the model's constraint is not re-validated here.
        validators: list = []


# `/v1` subclasses this with its own base and serializer, so the handlers exist once; they
# take `**kwargs` because `/v1` nests every route under its company.
class TeamViewSet(ScopedViewSet):
    queryset = Team.objects.all()
    serializer_class = TeamSerializer
    ordering_keys = (("name", False), ("id", False))

    def list(self, request, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.serializer_class(page, many=True).data)

    def create(self, request, **kwargs):
        serializer = self.serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        team = services.team_create(
            actor=self.actor, company=self.company, data=serializer.validated_data
        )
        return Response(self.serializer_class(team).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, **kwargs):
        return Response(self.serializer_class(self.get_object()).data)

    def partial_update(self, request, **kwargs):
        team = self.get_object()
        serializer = self.serializer_class(team, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        team = services.team_update(actor=self.actor, team=team, changes=serializer.validated_data)
        return Response(self.serializer_class(team).data)

    def destroy(self, request, **kwargs):
        """Delete the team; its agents and issues stay, without a team."""
        services.team_delete(actor=self.actor, team=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
