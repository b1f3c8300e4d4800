"""Issue and comment endpoints: validate, call one service, render."""

from __future__ import annotations

from django.utils.functional import cached_property
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from companies.api.views import ActivityViewSet
from companies.models import ActivityEvent
from issues import services
from issues.api.filters import IssueFilter
from issues.api.serializers import (
    CommentCreateSerializer,
    CommentSerializer,
    IssueDetailSerializer,
    IssueSerializer,
    IssueUpdateSerializer,
    IssueWriteSerializer,
)
from issues.models import Comment, Issue
from paperclip.api.errors import BadRequest, NotFound
from paperclip.api.permissions import IsActor, IsBoard
from paperclip.api.viewsets import ScopedViewSet

BOARD_ONLY_ACTIONS = {"destroy", "reopen"}


class IssueLookupMixin:
    """Resolve `{pk}` / `{issue_pk}` as an issue id or identifier, inside the caller's scope."""

    def issue_by_ref(self, ref: str, queryset=None) -> Issue:
        queryset = queryset if queryset is not None else Issue.objects.visible_to(self.actor)
        issue = queryset.by_ref(ref).first()
        if issue is None:
            raise NotFound()
        return issue


class IssueViewSet(IssueLookupMixin, ScopedViewSet):
    queryset = Issue.objects.all()
    serializer_class = IssueSerializer
    filterset_class = IssueFilter
    # Priority first (critical → low), then most recently updated.
    ordering_keys = (("priority", False), ("updated_at", True), ("id", True))

    def get_permissions(self):
        if self.action in BOARD_ONLY_ACTIONS:
            return [IsBoard()]
        return [IsActor()]

    def get_base_queryset(self):
        return Issue.objects.with_list_relations()

    def get_object(self) -> Issue:
        issue = self.issue_by_ref(self.kwargs["pk"], self.get_queryset())
        self.check_object_permissions(self.request, issue)
        return issue

    def _render(self, issue: Issue, serializer_class=IssueSerializer, **kwargs) -> Response:
        issue = self.get_base_queryset().get(pk=issue.pk)
        return Response(serializer_class(issue).data, headers={"ETag": issue.etag}, **kwargs)

    @extend_schema(responses=IssueSerializer(many=True))
    def list(self, request, company_pk: str):
        queryset = self.filter_queryset(self.get_queryset().visible_on_board())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(IssueSerializer(page, many=True).data)

    @extend_schema(request=IssueWriteSerializer, responses={201: IssueSerializer})
    def create(self, request, company_pk: str):
        self.require_company_write()
        serializer = IssueWriteSerializer(data=request.data, context={"company": self.company})
        serializer.is_valid(raise_exception=True)
        issue = services.issue_create(
            actor=self.actor, company=self.company, data=serializer.validated_data
        )
        return self._render(issue, status=status.HTTP_201_CREATED)

    @extend_schema(responses=IssueDetailSerializer)
    def retrieve(self, request, pk: str):
        return self._render(self.get_object(), IssueDetailSerializer)

    @extend_schema(
        request=IssueUpdateSerializer,
        responses=IssueSerializer,
        parameters=[
            OpenApiParameter("If-Match", location="header", required=False),
            OpenApiParameter("X-Paperclip-Run-Id", location="header", required=False),
        ],
    )
    def partial_update(self, request, pk: str):
        issue = self.get_object()
        serializer = IssueUpdateSerializer(
            instance=issue, data=request.data, partial=True, context={"company": issue.company}
        )
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        issue = services.issue_update(
            actor=self.actor,
            issue=issue,
            changes=changes,
            comment=changes.pop("comment", None),
            reopen=changes.pop("reopen", False),
            if_match=request.headers.get("If-Match"),
        )
        return self._render(issue)

    def destroy(self, request, pk: str):
        services.issue_delete(actor=self.actor, issue=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=IssueSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk: str):
        """Board only: bring a done/cancelled/failed issue back to todo (or backlog)."""
        issue = services.issue_reopen(actor=self.actor, issue=self.get_object())
        return self._render(issue)


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
            raise BadRequest("order must be asc or desc", details={"order": order})
        descending = order == "desc"
        return (("created_at", descending), ("id", descending))

    def get_pagination_anchor(self):
        after = self.request.query_params.get("after")
        if not after:
            return None
        anchor = Comment.objects.filter(issue=self.issue, pk=after).first()
        if anchor is None:
            raise BadRequest("after names no comment of this issue", details={"after": after})
        return (anchor.created_at, anchor.pk)

    @extend_schema(
        parameters=[
            OpenApiParameter("after", description="A comment id: the page starts after it"),
            OpenApiParameter("order", enum=["asc", "desc"], description="Default desc"),
        ]
    )
    def list(self, request, issue_pk: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(CommentSerializer(page, many=True).data)

    def retrieve(self, request, issue_pk: str, pk: str):
        comment = self.get_queryset().filter(pk=pk).first()
        if comment is None:
            raise NotFound()
        return Response(CommentSerializer(comment).data)

    @extend_schema(request=CommentCreateSerializer, responses={201: CommentSerializer})
    def create(self, request, issue_pk: str):
        serializer = CommentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.check_object_permissions(request, self.issue)
        comment = services.comment_create(
            actor=self.actor,
            issue=self.issue,
            body=serializer.validated_data["body"],
            reopen=serializer.validated_data["reopen"],
        )
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


class IssueActivityViewSet(IssueLookupMixin, ActivityViewSet):
    """Every row about the issue and its comments (and, later, documents and attachments)."""

    def get_base_queryset(self):
        issue = self.issue_by_ref(self.kwargs["issue_pk"])
        return ActivityEvent.objects.about_issue(issue.pk)
