"""`/v1` teams (DESIGN §8): `/api`'s teams under `/v1/companies/{cid}/teams`, through the same
services (the board writes; a taken name is a 400), in `/v1`'s envelope with ids as stored."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view

from agents.api import teams as api
from paperclip.api.viewsets import ID, route
from paperclip.v1.viewsets import V1ViewSet


class V1TeamSerializer(api.TeamSerializer):
    """A team as `/v1` writes it: `/api`'s fields, ids as stored (`tm_...`)."""


@extend_schema_view(
    list=extend_schema(tags=["v1"]),
    create=extend_schema(tags=["v1"], responses={201: V1TeamSerializer}),
    retrieve=extend_schema(tags=["v1"]),
    partial_update=extend_schema(tags=["v1"]),
    destroy=extend_schema(
        tags=["v1"], description="Delete the team; its agents and tasks stay, without a team."
    ),
)
# `/api`'s handlers (one copy of them) on `/v1`'s base: its envelope, pages and parsers.
class TeamViewSet(V1ViewSet, api.TeamViewSet):
    serializer_class = V1TeamSerializer


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
