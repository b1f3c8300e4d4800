"""The base viewset every `/api` resource uses: scoping, company nesting, routes."""

from __future__ import annotations

from django.urls import re_path
from django.utils.functional import cached_property
from rest_framework import viewsets

from paperclip import idempotency
from paperclip.actors import Actor
from paperclip.api.pagination import KeysetPagination
from paperclip.errors import NotFound


class ScopedViewSet(viewsets.GenericViewSet):
    """Rows come from `model.objects.visible_to(actor)`: another company's object is a 404.

    Routes nested under `/companies/{company_pk}/` also resolve `self.company` (404 when the
    caller cannot see it) and narrow the queryset to it.

    Every POST honours `Idempotency-Key` (`paperclip.idempotency`): claimed once the request is
    known to be the caller's to make, its answer kept when the view has answered.
    """

    pagination_class = KeysetPagination
    # The URL keyword naming the object; `by_ref` on the queryset resolves it (an id, or for
    # issues an identifier too), a `lookup_field` other than pk is matched as it is.
    lookup_field = "pk"
    ordering_keys: tuple[tuple[str, bool], ...] = (("created_at", True), ("id", True))

    @property
    def actor(self) -> Actor:
        return self.request.auth

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # A company the caller cannot see is a 404 before anything else is looked at (the
        # body included): the answer is the same whatever was sent. A method the route does
        # not serve stays a 405.
        served = hasattr(self, request.method.lower())
        if served and "company_pk" in self.kwargs and not getattr(self, "swagger_fake_view", False):
            _ = self.company
        if served and request.method == "POST":
            self.idempotency_claim = idempotency.claim(request, self.actor)

    def handle_exception(self, exc):
        if isinstance(exc, idempotency.Replay):
            return exc.response
        try:
            return super().handle_exception(exc)
        except BaseException:
            idempotency.abandon(getattr(self, "idempotency_claim", None))
            raise

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        idempotency.finish(getattr(self, "idempotency_claim", None), response)
        return response

    def get_base_queryset(self):
        return self.queryset.all()

    def get_queryset(self):
        queryset = self.get_base_queryset()
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller
            return queryset.none()
        queryset = queryset.visible_to(self.actor)
        if "company_pk" in self.kwargs:
            queryset = queryset.for_company(self.company.pk)
        return queryset

    def get_object(self):
        """The object the URL names, among those the caller may see: else 404, whether it is
        missing or another company's. Who may change it is the service's to decide."""
        ref = self.lookup_value(self.kwargs[self.lookup_field])
        queryset = self.get_queryset()
        if self.lookup_field == "pk":
            return found(queryset.by_ref(ref))
        return found(queryset.filter(**{self.lookup_field: ref}))

    def lookup_value(self, ref: str) -> str:
        """A hook to validate the URL's reference before it is looked up."""
        return ref

    def get_ordering_keys(self):
        return self.ordering_keys

    @cached_property
    def company(self):
        from companies.models import Company  # paperclip/ must not import apps at load time

        company = Company.objects.visible_to(self.actor).by_ref(self.kwargs["company_pk"]).first()
        if company is None:
            raise NotFound()
        return company

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if "company_pk" in self.kwargs and not getattr(self, "swagger_fake_view", False):
            context["company"] = self.company
        return context


def found(queryset):
    """The one row `queryset` selects, or 404."""
    row = queryset.first()
    if row is None:
        raise NotFound()
    return row


def route(pattern: str, view, name: str | None = None):
    """A URL that answers with or without a trailing slash (clients differ)."""
    return re_path(rf"^{pattern}/?$", view, name=name)


ID = r"[^/]+"
