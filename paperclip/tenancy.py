"""Tenancy in one place: every company-owned model's queryset scopes itself to the caller.

Views get their rows through `visible_to(actor)`; another company's object is then simply not
found (404), exactly like a missing one.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower

from paperclip.actors import Actor
from paperclip.ids import parse_id


def unique_name_per_company(model_label: str) -> models.UniqueConstraint:
    """Names unique within a company, case-insensitively (they are matched that way)."""
    article = "An" if model_label[0] in "aeiou" else "A"
    return models.UniqueConstraint(
        Lower("name"),
        "company",
        name=f"{model_label}_name_unique_per_company",
        violation_error_message=f"{article} {model_label} with this name already exists.",
    )


class CompanyScopedQuerySet(models.QuerySet):
    company_lookup = "company_id"

    def by_ref(self, ref: str):
        """The row an URL or a body names, by id in either wire form (issues also take their
        identifier); a malformed id names nothing."""
        pk = parse_id(ref, self.model._meta.pk.prefix)
        return self.filter(pk=pk) if pk else self.none()

    def for_company(self, company_id: str):
        return self.filter(**{self.company_lookup: company_id})

    def visible_to(self, actor: Actor):
        if actor.is_instance_admin:
            return self
        return self.filter(**{f"{self.company_lookup}__in": actor.company_ids})
