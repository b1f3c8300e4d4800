"""Comments on an issue: list (cursor, `after` or `afterCommentId`, `order`), read, add."""

from __future__ import annotations

from django.utils.functional import cached_property
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from issues import services
from issues.api.lookups import IssueLookupMixin
from issues.models import (
    Comment,
    Issue,
)
from paperclip.api.serializers import CamelModelSerializer, CamelSerializer
from paperclip.api.viewsets import ScopedViewSet, found
from paperclip.errors import ValidationFailed
from paperclip.ids import parse_id


class CommentSerializer(CamelModelSerializer):
    class Meta:
        model = Comment
        fields = [
            "id",
            "company_id",
            "issue_id",
            "author_agent_id",
            "author_user_id",
            "body",
            "run_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CommentCreateSerializer(CamelSerializer):
    body = serializers.CharField(max_length=100_000)
    reopen = serializers.BooleanField(required=False, default=False)


class CommentViewSet(IssueLookupMixin, ScopedViewSet):
    queryset = Comment.objects.all()
    serializer_class = CommentSerializer
    default_limit = 100
    max_limit = 500

    @cached_property
    def issue(self) -> Issue:
        return self.issue_by_ref(self.kwargs["issue_pk"])

    def get_base_queryset(self):
        return Comment.objects.filter(issue=self.issue)

    def get_ordering_keys(self):
        order = self.request.query_params.get("order", "desc")
        if order not in ("asc", "desc"):
            raise ValidationFailed("order must be asc or desc", details={"order": order})
        descending = order == "desc"
        return (("created_at", descending), ("id", descending))

    def get_pagination_anchor(self):
        params = self.request.query_params
        # `afterCommentId` is the name Paperclip's own clients send; `after` is DESIGN §5's.
        names = {name: params[name] for name in ("after", "afterCommentId") if params.get(name)}
        if not names:
            return None
        if len({parse_id(value, "cmt") or value for value in names.values()}) > 1:
            raise ValidationFailed(
                "after and afterCommentId name different comments: send one of them",
                details=names,
            )
        name, after = next(iter(names.items()))
        anchor = Comment.objects.filter(issue=self.issue, pk=parse_id(after, "cmt")).first()
        if anchor is None:
            raise ValidationFailed(f"{name} names no comment of this issue", details={name: after})
        return (anchor.created_at, anchor.pk)

    @extend_schema(
        parameters=[
            OpenApiParameter("after", description="A comment id: the page starts after it"),
            OpenApiParameter(
                "afterCommentId", description="Paperclip's name for `after` (either may be sent)"
            ),
            OpenApiParameter("order", enum=["asc", "desc"], description="Default desc"),
        ]
    )
    def list(self, request, issue_pk: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(CommentSerializer(page, many=True).data)

    def retrieve(self, request, issue_pk: str, pk: str):
        comment = found(self.get_queryset().by_ref(pk))
        return Response(CommentSerializer(comment).data)

    @extend_schema(request=CommentCreateSerializer, responses={201: CommentSerializer})
    def create(self, request, issue_pk: str):
        serializer = CommentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = services.comment_create(
            actor=self.actor,
            issue=self.issue,
            body=serializer.validated_data["body"],
            reopen=serializer.validated_data["reopen"],
        )
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)
