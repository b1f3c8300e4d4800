"""Reads that carry a rule of their own: who may ask (board users), what a figure means (spend)."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import DecimalField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from companies.models import Company, User
from paperclip.actors import Actor
from paperclip.errors import NotAllowed


def user_me(actor: Actor) -> User:
    """The calling board user with its memberships. Agents are not board users (403)."""
    if not actor.is_board:
        raise NotAllowed("Board access required")
    return User.objects.prefetch_related("memberships__company").get(pk=actor.user.pk)


def with_month_spend(companies: QuerySet[Company]) -> QuerySet[Company]:
    """Each company with what it spent this UTC month (`spent_cents_this_month`, cents with
    fractions), as a subquery of the same SELECT: a list costs no query per company."""
    from issues.models import CostEvent  # costs build on companies; the read looks up at them

    costs = (
        CostEvent.objects.filter(company=OuterRef("pk"))
        .this_month()
        .order_by()
        .values("company_id")
        .annotate(total=Sum("cost_cents"))
        .values("total")
    )
    return companies.annotate(
        spent_cents_this_month=Coalesce(
            Subquery(costs), Value(Decimal(0)), output_field=DecimalField()
        )
    )


def spent_monthly_cents(company: Company) -> int:
    """A company read through `with_month_spend`: its spend this month in whole cents."""
    from agents.models import whole_cents  # the one rounding of cents for the wire

    return whole_cents(company.spent_cents_this_month)
