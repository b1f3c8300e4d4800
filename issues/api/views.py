"""Issue and comment endpoints: validate, call one service, render."""

from __future__ import annotations

from django.db.models import prefetch_related_objects
from django.utils.functional import cached_property
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from agents.api.serializers import HeartbeatRunSerializer
from agents.models import HeartbeatRun
from companies.api.views import ActivityViewSet
from companies.models import ActivityEvent
from issues import services
from issues.api.filters import IssueFilter
from issues.api.serializers import (
    CheckoutSerializer,
    CommentCreateSerializer,
    CommentSerializer,
    ForceReleaseSerializer,
    HeartbeatContextSerializer,
    InboxItemSerializer,
    IssueDetailSerializer,
    IssueSerializer,
    IssueUpdateSerializer,
    IssueWriteSerializer,
)
from issues.models import LIST_PREFETCHES, Comment, Issue, Status
from paperclip.api.pagination import MAX_LIMIT
from paperclip.api.viewsets import ScopedViewSet, found
from paperclip.errors import NotAllowed, NotFound, ValidationFailed


class IssueLookupMixin:
    """Resolve `{pk}` / `{issue_pk}` as an issue id or identifier, inside the caller's scope."""

    def issue_by_ref(self, ref: str, queryset=None) -> Issue:
        queryset = queryset if queryset is not None else Issue.objects.visible_to(self.actor)
        return found(queryset.by_ref(ref))


class IssueViewSet(IssueLookupMixin, ScopedViewSet):
    queryset = Issue.objects.all()
    serializer_class = IssueSerializer
    filterset_class = IssueFilter
    # Priority first (critical → low), then most recently updated.
    ordering_keys = (("priority", False), ("updated_at", True), ("id", True))

    def get_base_queryset(self):
        if self.action == "list":
            return Issue.objects.with_list_relations()
        if self.action == "retrieve":
            return Issue.objects.select_related("project", "goal").prefetch_related(
                *LIST_PREFETCHES
            )
        # Writes: the service re-reads and locks what it needs; `project` for its paused check.
        return Issue.objects.select_related("company", "project")

    def _render(self, issue: Issue, serializer_class=IssueSerializer, **kwargs) -> Response:
        """Render the issue a service answered (its labels and dependencies fetched fresh)."""
        prefetch_related_objects([issue], *LIST_PREFETCHES)
        return Response(serializer_class(issue).data, headers={"ETag": issue.etag}, **kwargs)

    @extend_schema(responses=IssueSerializer(many=True))
    def list(self, request, company_pk: str):
        queryset = self.filter_queryset(self.get_queryset().visible_on_board())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(IssueSerializer(page, many=True).data)

    @extend_schema(request=IssueWriteSerializer, responses={201: IssueSerializer})
    def create(self, request, company_pk: str):
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

    @extend_schema(
        request=CheckoutSerializer,
        responses=IssueSerializer,
        parameters=[OpenApiParameter("X-Paperclip-Run-Id", location="header", required=False)],
    )
    @action(detail=True, methods=["post"])
    def checkout(self, request, pk: str):
        """Claim the issue for a run: exactly one of N racing runs wins; the rest get 409."""
        issue = self.get_object()
        serializer = CheckoutSerializer(
            data=request.data, context={"company": issue.company, "actor": self.actor}
        )
        serializer.is_valid(raise_exception=True)
        issue = services.issue_checkout(
            actor=self.actor,
            issue=issue,
            agent=serializer.validated_data["agent"],
            expected_statuses=serializer.validated_data["expected_statuses"],
        )
        return self._render(issue)

    @extend_schema(request=None, responses=IssueSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request, pk: str):
        """Give the issue up: no assignee, no lock; in_progress goes back to todo."""
        issue = services.issue_release(actor=self.actor, issue=self.get_object())
        return self._render(issue)

    @extend_schema(
        request=None,
        responses=ForceReleaseSerializer,
        parameters=[OpenApiParameter("clearAssignee", bool, required=False)],
    )
    @action(detail=True, methods=["post"], url_path="admin/force-release")
    def force_release(self, request, pk: str):
        """Board only: drop the lock whoever holds it; answers the previous holder."""
        clear = request.query_params.get("clearAssignee", "").lower() in {"1", "true", "yes"}
        issue, previous = services.issue_force_release(
            actor=self.actor, issue=self.get_object(), clear_assignee=clear
        )
        prefetch_related_objects([issue], *LIST_PREFETCHES)
        return Response({"issue": IssueSerializer(issue).data, "previousLock": previous})

    @extend_schema(responses=HeartbeatRunSerializer(many=True))
    @action(detail=True, methods=["get"])
    def runs(self, request, pk: str):
        """Runs woken for the issue or that held its lock, newest first."""
        issue = self.get_object()
        runs = HeartbeatRun.objects.for_issue(issue.pk)[:200]
        return Response(HeartbeatRunSerializer(runs, many=True).data)

    @extend_schema(
        responses=HeartbeatContextSerializer,
        parameters=[OpenApiParameter("wakeCommentId", required=False)],
    )
    @action(detail=True, methods=["get"], url_path="heartbeat-context")
    def heartbeat_context(self, request, pk: str):
        """What an agent needs to resume: the issue, its ancestors, where the comments stand,
        and the comment that woke it."""
        issue = self.get_object()
        wake_comment_id = request.query_params.get("wakeCommentId")
        return Response(
            HeartbeatContextSerializer(issue, context={"wake_comment_id": wake_comment_id}).data
        )


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
        after = self.request.query_params.get("after")
        if not after:
            return None
        anchor = Comment.objects.filter(issue=self.issue, pk=after).first()
        if anchor is None:
            raise ValidationFailed("after names no comment of this issue", details={"after": after})
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


class InboxViewSet(ScopedViewSet):
    """An agent's open work, in the order to do it."""

    queryset = Issue.objects.all()

    @extend_schema(responses=InboxItemSerializer(many=True))
    def inbox_lite(self, request):
        """todo, in_progress and blocked issues assigned to the caller, by priority."""
        if not self.actor.is_agent:
            raise NotAllowed("Only agents have an inbox; board users list issues")
        issues = (
            self.get_queryset()
            .filter(
                assignee_agent=self.actor.agent,
                status__in=[Status.TODO, Status.IN_PROGRESS, Status.BLOCKED],
            )
            .visible_on_board()
            .select_related("checkout_run")
            .order_by("priority", "-updated_at", "-id")[:MAX_LIMIT]
        )
        return Response(InboxItemSerializer(issues, many=True).data)
