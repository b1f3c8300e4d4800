"""`/v1` teams (DESIGN §8): `/api`'s teams under `/v1/companies/{cid}/teams`, through the same
services (the board writes; a taken name is a 400), in `/v1`'s envelope with ids as stored."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response

from agents import services
from agents.api.teams import TeamSerializer
from agents.models import Team
from paperclip.api.viewsets import ID, route
from paperclip.v1.viewsets import V1ViewSet


class V1TeamSerializer(TeamSerializer):
    """A team as `/v1` writes it: `/api`'s fields, ids as stored (`tm_...`)."""


@extend_schema_view(
    list=extend_schema(tags=["v1"]),
    create=extend_schema(tags=["v1"], responses={201: V1TeamSerializer}),
    retrieve=extend_schema(tags=["v1"]),
    partial_update=extend_schema(tags=["v1"]),
    destroy=extend_schema(tags=["v1"]),
)
class TeamViewSet(V1ViewSet):
    queryset = Team.objects.all()
    serializer_class = V1TeamSerializer
    ordering_keys = (("name", False), ("id", False))

    def list(self, request, company_pk: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(V1TeamSerializer(page, many=True).data)

    def create(self, request, company_pk: str):
        serializer = V1TeamSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        team = services.team_create(
            actor=self.actor, company=self.company, data=serializer.validated_data
        )
        return Response(V1TeamSerializer(team).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, company_pk: str, pk: str):
        return Response(V1TeamSerializer(self.get_object()).data)

    def partial_update(self, request, company_pk: str, pk: str):
        team = self.get_object()
        serializer = V1TeamSerializer(team, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        team = services.team_update(actor=self.actor, team=team, changes=serializer.validated_data)
        return Response(V1TeamSerializer(team).data)

    def destroy(self, request, company_pk: str, pk: str):
        """Delete the team; its agents and tasks stay, without a team."""
        services.team_delete(actor=self.actor, team=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


COMPANY = rf"companies/(?P<company_pk>{ID})"

urlpatterns = [
    route(
        f"{COMPANY}/teams",
        TeamViewSet.as_view({"get": "list", "post": "create"}),
        name="v1-teams",
    ),
    route(
        rf"{COMPANY}/teams/(?P<pk>{ID})",
        TeamViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="v1-team",
    ),
]
