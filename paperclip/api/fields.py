"""Serializer fields that resolve ids inside the caller's company."""

from __future__ import annotations

from rest_framework import serializers

from paperclip.ids import parse_id


class CompanyScopedRelatedField(serializers.PrimaryKeyRelatedField):
    """A related id that must name an object of the company in the serializer's context.

    An id from another company reads as "does not exist", exactly like a missing one.
    """

    def __init__(self, model=None, **kwargs):
        self.model = model
        if not kwargs.get("read_only"):
            kwargs.setdefault("queryset", model.objects.none())
        super().__init__(**kwargs)

    def get_queryset(self):
        company = self.context.get("company")
        if company is None:
            return self.model.objects.none()
        return self.model.objects.for_company(company.pk)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        # Either wire form of the id (prefixed or UUID); anything else names nothing.
        pk = parse_id(data, self.model._meta.pk.prefix)
        if pk is None:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(pk)


class DateTimeField(serializers.DateTimeField):
    """A timestamp the wire can write back: `DATETIME_FORMAT` has a four-digit year, so years
    before 1000 (which `%Y` would write with fewer digits, not ISO 8601) are refused."""

    default_error_messages = {"year": "Must be between the years 1000 and 9999."}

    def to_internal_value(self, value):
        moment = super().to_internal_value(value)
        if moment.year < 1000:
            self.fail("year")
        return moment
