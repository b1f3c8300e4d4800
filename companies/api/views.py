"""Company, board-user and activity endpoints."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from companies import services
from companies.api.filters import ActivityFilter
from companies.api.serializers import (
    ActivitySerializer,
    CompanyCreateSerializer,
    CompanySerializer,
    UserMeSerializer,
)
from companies.models import ActivityEvent, Company
from paperclip.api.viewsets import ScopedViewSet
from paperclip.errors import NotAllowed


class CompanyViewSet(ScopedViewSet):
    queryset = Company.objects.all()
    serializer_class = CompanySerializer
    ordering_keys = (("name", False), ("id", False))

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(CompanySerializer(page, many=True).data)

    @extend_schema(request=CompanyCreateSerializer, responses={201: CompanySerializer})
    def create(self, request):
        """Instance admins only: create a company; the caller becomes its owner."""
        serializer = CompanyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        company = services.company_create(actor=self.actor, **serializer.validated_data)
        return Response(CompanySerializer(company).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk: str):
        return Response(CompanySerializer(self.get_object()).data)

    def partial_update(self, request, pk: str):
        company = self.get_object()
        serializer = CompanySerializer(company, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        company = services.company_update(
            actor=self.actor, company=company, changes=serializer.validated_data
        )
        return Response(CompanySerializer(company).data)


class UserViewSet(ScopedViewSet):
    @extend_schema(responses=UserMeSerializer)
    @action(detail=False, methods=["get"])
    def me(self, request):
        """The board caller: id, username and company memberships."""
        if not self.actor.is_board:
            raise NotAllowed("Board access required")
        user = (
            type(request.user)
            .objects.prefetch_related("memberships__company")
            .get(pk=request.user.pk)
        )
        return Response(UserMeSerializer(user).data)


class ActivityViewSet(ScopedViewSet):
    """The append-only log, newest first."""

    queryset = ActivityEvent.objects.all()
    serializer_class = ActivitySerializer
    filterset_class = ActivityFilter

    def list(self, request, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ActivitySerializer(page, many=True).data)
