"""Companies: list, create (instance admins), read, update, set the monthly budget."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from companies import services
from companies.models import Company
from companies.selectors import spent_monthly_cents, with_month_spend
from paperclip.api.serializers import CamelModelSerializer, CamelSerializer
from paperclip.api.viewsets import ScopedViewSet, found

MAX_CENTS = 2_147_483_647  # the budget columns are PositiveIntegerField


class BudgetSerializer(CamelSerializer):
    """`PATCH .../budgets`: the monthly budget in cents, 0 = none."""

    budget_monthly_cents = serializers.IntegerField(min_value=0, max_value=MAX_CENTS)


class CompanySerializer(CamelModelSerializer):
    spent_monthly_cents = serializers.SerializerMethodField()

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
            "spent_monthly_cents",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "issue_prefix", "issue_counter", "created_at", "updated_at"]

    def get_spent_monthly_cents(self, company: Company) -> int:
        """This UTC month's spend, from `selectors.with_month_spend` (every view reads through
        it)."""
        return spent_monthly_cents(company)


class CompanyCreateSerializer(CamelModelSerializer):
    class Meta:
        model = Company
        fields = ["name", "description", "budget_monthly_cents"]


class CompanyViewSet(ScopedViewSet):
    queryset = Company.objects.all()
    serializer_class = CompanySerializer
    ordering_keys = (("name", False), ("id", False))

    def get_queryset(self):
        return with_month_spend(super().get_queryset())  # `spentMonthlyCents` in the same query

    def _answer(self, company: Company, **kwargs) -> Response:
        """The company a service answered, read again with its spend."""
        return Response(CompanySerializer(self._with_spend(company)).data, **kwargs)

    def _with_spend(self, company: Company) -> Company:
        return found(with_month_spend(Company.objects.filter(pk=company.pk)))

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(CompanySerializer(page, many=True).data)

    @extend_schema(request=CompanyCreateSerializer, responses={201: CompanySerializer})
    def create(self, request):
        """Instance admins only: create a company; the caller becomes its owner."""
        serializer = CompanyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        company = services.company_create(actor=self.actor, **serializer.validated_data)
        return self._answer(company, status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk: str):
        return Response(CompanySerializer(self.get_object()).data)

    def partial_update(self, request, pk: str):
        company = self.get_object()
        serializer = CompanySerializer(company, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        company = services.company_update(
            actor=self.actor, company=company, changes=serializer.validated_data
        )
        return self._answer(company)

    @extend_schema(request=BudgetSerializer, responses=CompanySerializer)
    @action(detail=True, methods=["patch"])
    def budgets(self, request, pk: str):
        """Board only: set the company's monthly budget (`budgetMonthlyCents`, 0 = none). Raised
        above this month's spend, a budget stop is lifted (its agents resume); lowered to or
        below it, every agent of the company stops now (DESIGN §10)."""
        from issues.services.costs import budget_set  # costs build on companies

        company = self.get_object()
        serializer = BudgetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        company = budget_set(
            actor=self.actor, row=company, cents=serializer.validated_data["budget_monthly_cents"]
        )
        return self._answer(company)
