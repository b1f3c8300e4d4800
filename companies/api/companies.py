"""Companies: list, create (instance admins), read, update."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from companies import services
from companies.models import Company
from paperclip.api.serializers import CamelModelSerializer
from paperclip.api.viewsets import ScopedViewSet


class CompanySerializer(CamelModelSerializer):
    class Meta:
        model = Company
        fields = [
            "id",
            "name",
            "description",
            "issue_prefix",
            "issue_counter",
            "status",
            "budget_monthly_cents",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "issue_prefix", "issue_counter", "created_at", "updated_at"]


class CompanyCreateSerializer(CamelModelSerializer):
    class Meta:
        model = Company
        fields = ["name", "description", "budget_monthly_cents"]


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
