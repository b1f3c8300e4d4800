"""Issues: list, create, read, PATCH, delete, and the work protocol's verbs on one issue
(checkout, release, reopen, force-release, its runs and heartbeat context)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import prefetch_related_objects
from django.utils.functional import SimpleLazyObject
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from agents.api.runs import HeartbeatRunSerializer
from agents.models import Agent, HeartbeatRun, Team
from companies.api.activity import ActivityViewSet
from companies.models import ActivityEvent
from issues import services
from issues.api.comments import CommentSerializer
from issues.api.filters import IssueFilter
from issues.api.lookups import IssueLookupMixin
from issues.models import (
    LIST_PREFETCHES,
    Document,
    Goal,
    Issue,
    Label,
    Priority,
    Project,
    Status,
)
from paperclip.api.fields import CompanyScopedRelatedField, DateTimeField
from paperclip.api.serializers import (
    CamelModelSerializer,
    CamelSerializer,
    LabelChoiceField,
    NeutralField,
    PlannedRepresentationMixin,
)
from paperclip.api.viewsets import ScopedViewSet, found
from paperclip.conditional import unchanged, version_etag
from paperclip.ids import parse_id


class IssueRefField(CompanyScopedRelatedField):
    """An issue of the company, by id or by identifier (`ACM-12`)."""

    def __init__(self, **kwargs):
        super().__init__(model=Issue, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        issue = self.get_queryset().by_ref(data).first()
        if issue is None:
            self.fail("does_not_exist", pk_value=data)
        return issue


class CompanyUserField(CompanyScopedRelatedField):
    """A board user with a seat in the company."""

    def __init__(self, **kwargs):
        super().__init__(model=get_user_model(), **kwargs)

    def get_queryset(self):
        company = self.context.get("company")
        if company is None:
            return self.model.objects.none()
        return self.model.objects.filter(memberships__company=company)


class LabelSummarySerializer(PlannedRepresentationMixin, CamelModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "color"]


class IssueSerializer(PlannedRepresentationMixin, CamelModelSerializer):
    """The issue as every list and write answers it."""

    priority = LabelChoiceField(Priority)
    labels = LabelSummarySerializer(many=True, read_only=True, source="label_list")
    label_ids = serializers.SerializerMethodField()
    dependency_ids = serializers.SerializerMethodField()

    class Meta:
        model = Issue
        fields = [
            "id",
            "company_id",
            "identifier",
            "number",
            "title",
            "description",
            "status",
            "priority",
            "assignee_agent_id",
            "assignee_user_id",
            "parent_id",
            "project_id",
            "goal_id",
            "team_id",
            "label_ids",
            "labels",
            "dependency_ids",
            "billing_code",
            "budget_usd",
            "due_at",
            "created_by_agent_id",
            "created_by_user_id",
            "checkout_run_id",
            "execution_locked_at",
            "started_at",
            "completed_at",
            "cancelled_at",
            "failed_at",
            "hidden_at",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_label_ids(self, issue: Issue) -> list[str]:
        return [label.pk for label in issue.label_list()]

    def get_dependency_ids(self, issue: Issue) -> list[str]:
        return [dependency.pk for dependency in issue.dependency_list()]


class ProjectSummarySerializer(CamelModelSerializer):
    class Meta:
        model = Project
        fields = ["id", "name", "status"]


class GoalSummarySerializer(CamelModelSerializer):
    class Meta:
        model = Goal
        fields = ["id", "title", "level", "status"]


class AncestorSerializer(CamelModelSerializer):
    project = ProjectSummarySerializer(read_only=True)
    goal = GoalSummarySerializer(read_only=True)

    class Meta:
        model = Issue
        fields = ["id", "identifier", "title", "status", "project_id", "goal_id", "project", "goal"]


SUMMARY_FIELDS = [
    "id",
    "company_id",
    "issue_id",
    "key",
    "title",
    "format",
    "latest_revision_id",
    "revision_number",
    "created_at",
    "updated_at",
]


class DocumentSummarySerializer(CamelModelSerializer):
    revision_number = serializers.IntegerField(source="latest_revision.number", read_only=True)

    class Meta:
        model = Document
        fields = SUMMARY_FIELDS
        read_only_fields = fields


class DocumentSerializer(DocumentSummarySerializer):
    class Meta:
        model = Document
        fields = [*SUMMARY_FIELDS[:6], "body", *SUMMARY_FIELDS[6:]]
        read_only_fields = fields


class IssueDetailSerializer(IssueSerializer):
    """One issue with its parent chain (nearest first), project and goal."""

    # allow_null: the schema must say what an issue without a project or goal answers (null).
    project = ProjectSummarySerializer(read_only=True, allow_null=True)
    goal = GoalSummarySerializer(read_only=True, allow_null=True)
    ancestors = serializers.SerializerMethodField()
    plan_document = serializers.SerializerMethodField()
    document_summaries = serializers.SerializerMethodField()

    class Meta(IssueSerializer.Meta):
        fields = [
            *IssueSerializer.Meta.fields,
            "project",
            "goal",
            "ancestors",
            "plan_document",
            "document_summaries",
        ]

    def _documents(self, issue: Issue) -> list[Document]:
        if not hasattr(issue, "_documents"):
            issue._documents = list(issue.documents.select_related("latest_revision"))
        return issue._documents

    def get_plan_document(self, issue: Issue) -> dict | None:
        plan = next((d for d in self._documents(issue) if d.key == "plan"), None)
        return DocumentSerializer(plan).data if plan else None

    def get_document_summaries(self, issue: Issue) -> list[dict]:
        return DocumentSummarySerializer(self._documents(issue), many=True).data

    def get_ancestors(self, issue: Issue) -> list[dict]:
        chain, seen, node = [], {issue.pk}, issue.parent
        while node is not None and node.pk not in seen:
            chain.append(node)
            seen.add(node.pk)
            node = node.parent
        return AncestorSerializer(chain, many=True).data


class IssueWriteSerializer(CamelSerializer):
    """What POST and PATCH accept. Ids resolve inside the issue's company."""

    title = serializers.CharField(max_length=500)
    description = serializers.CharField(allow_blank=True, required=False)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    priority = LabelChoiceField(Priority, required=False)
    # Related ids are named `<thing>_id` on the wire (assigneeAgentId) and land in
    # validated_data under the model's field name (assignee_agent).
    assignee_agent_id = CompanyScopedRelatedField(
        model=Agent, required=False, allow_null=True, source="assignee_agent"
    )
    assignee_user_id = CompanyUserField(required=False, allow_null=True, source="assignee_user")
    parent_id = IssueRefField(required=False, allow_null=True, source="parent")
    project_id = CompanyScopedRelatedField(
        model=Project, required=False, allow_null=True, source="project"
    )
    goal_id = CompanyScopedRelatedField(model=Goal, required=False, allow_null=True, source="goal")
    team_id = CompanyScopedRelatedField(model=Team, required=False, allow_null=True, source="team")
    label_ids = CompanyScopedRelatedField(model=Label, many=True, required=False, source="labels")
    dependency_ids = IssueRefField(many=True, required=False, source="dependencies")
    # Paperclip's name for the same thing: the issues this one waits on.
    blocked_by_issue_ids = IssueRefField(
        many=True, required=False, write_only=True, source="blocked_by"
    )
    billing_code = serializers.CharField(max_length=100, allow_blank=True, required=False)
    budget_usd = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, allow_null=True, required=False
    )
    due_at = DateTimeField(allow_null=True, required=False)
    # Sent by Paperclip's clients with these values by default; they ask for nothing here.
    work_mode = NeutralField(["standard"])
    request_depth = NeutralField([0])
    allow_duplicate = NeutralField([False, True])  # no duplicate-title detection to bypass

    def validate(self, attrs):
        if "blocked_by" in attrs:
            blocked_by = attrs.pop("blocked_by")
            ours = {i.pk for i in attrs.get("dependencies", blocked_by)}
            if ours != {i.pk for i in blocked_by}:
                message = "dependencyIds and blockedByIssueIds differ: send one of them."
                raise serializers.ValidationError(
                    {"dependencyIds": [message], "blockedByIssueIds": [message]}
                )
            attrs["dependencies"] = blocked_by
        issue = self.instance
        if issue is not None:
            if attrs.get("parent") is not None and attrs["parent"].pk == issue.pk:
                raise serializers.ValidationError(
                    {"parentId": ["An issue cannot be its own parent."]}
                )
            if any(dep.pk == issue.pk for dep in attrs.get("dependencies", [])):
                raise serializers.ValidationError(
                    {"dependencyIds": ["An issue cannot depend on itself."]}
                )
        return attrs


class IssueUpdateSerializer(IssueWriteSerializer):
    """PATCH: every field optional, plus an optional comment and the board's reopen."""

    comment = serializers.CharField(required=False, allow_blank=False, max_length=100_000)
    reopen = serializers.BooleanField(required=False, default=False)


CHECKOUT_STATUSES = [
    Status.BACKLOG,
    Status.TODO,
    Status.BLOCKED,
    Status.IN_REVIEW,
    Status.IN_PROGRESS,
]


class CheckoutSerializer(CamelSerializer):
    """`agentId` defaults to the calling agent; the board must name one."""

    agent_id = CompanyScopedRelatedField(model=Agent, required=False, source="agent")
    expected_statuses = serializers.ListField(
        child=serializers.ChoiceField(choices=CHECKOUT_STATUSES),
        required=False,
        allow_empty=False,
        default=lambda: [Status.TODO, Status.BACKLOG, Status.BLOCKED],
    )

    def validate(self, attrs):
        if "runId" in self.initial_data:
            raise serializers.ValidationError(
                {"runId": ["Not accepted in the body: send X-Paperclip-Run-Id."]}
            )
        actor = self.context["actor"]
        if "agent" not in attrs:
            if not actor.is_agent:
                raise serializers.ValidationError({"agentId": ["The board must name the agent."]})
            attrs["agent"] = actor.agent
        return attrs


class ForceReleaseSerializer(CamelSerializer):
    issue = IssueSerializer(read_only=True)
    previous_lock = serializers.DictField(read_only=True)


class HeartbeatContextSerializer(CamelModelSerializer):
    """An issue as a waking agent needs it: compact, with context, cheap to fetch."""

    priority = LabelChoiceField(Priority)
    ancestors = serializers.SerializerMethodField()
    comment_cursor = serializers.SerializerMethodField()
    wake_comment = serializers.SerializerMethodField()

    class Meta:
        model = Issue
        fields = [
            "id",
            "identifier",
            "title",
            "description",
            "status",
            "priority",
            "assignee_agent_id",
            "checkout_run_id",
            "project_id",
            "goal_id",
            "parent_id",
            "updated_at",
            "ancestors",
            "comment_cursor",
            "wake_comment",
        ]
        read_only_fields = fields

    def get_ancestors(self, issue: Issue) -> list[dict]:
        return IssueDetailSerializer().get_ancestors(issue)

    def get_comment_cursor(self, issue: Issue) -> dict:
        latest = issue.comments.order_by("-created_at", "-id").first()
        return {
            "totalComments": issue.comments.count(),
            "latestCommentId": latest.pk if latest else None,
            "latestCommentAt": serializers.DateTimeField().to_representation(latest.created_at)
            if latest
            else None,
        }

    def get_wake_comment(self, issue: Issue) -> dict | None:
        comment_id = parse_id(self.context.get("wake_comment_id"), "cmt")
        comment = issue.comments.filter(pk=comment_id).first() if comment_id else None
        return CommentSerializer(comment).data if comment else None


class IssueViewSet(IssueLookupMixin, ScopedViewSet):
    queryset = Issue.objects.all()
    serializer_class = IssueSerializer
    filterset_class = IssueFilter
    # Priority first (critical → low), then most recently updated.
    ordering_keys = (("priority", False), ("updated_at", True), ("id", True))

    def get_base_queryset(self):
        if self.action == "retrieve":
            return Issue.objects.select_related("project", "goal").prefetch_related(
                *LIST_PREFETCHES
            )
        if self.action in ("list", "checkout"):
            return Issue.objects.all()
        # Writes: the service re-reads and locks what it needs; `project` for its paused check.
        return Issue.objects.select_related("company", "project")

    def _render(self, issue: Issue, serializer_class=IssueSerializer, **kwargs) -> Response:
        """Render the issue a service answered (its labels and dependencies fetched fresh)."""
        prefetch_related_objects([issue], *LIST_PREFETCHES)
        return Response(serializer_class(issue).data, headers={"ETag": issue.etag}, **kwargs)

    @extend_schema(responses=IssueSerializer(many=True))
    def list(self, request, company_pk: str):
        queryset = self.filter_queryset(self.get_queryset().visible_on_board())
        # An agent polls its inbox: a repeat with the tag it holds is answered from one
        # aggregate statement, without reading the page.
        etag = version_etag(request, queryset)
        if (not_modified := unchanged(request, etag)) is not None:
            return not_modified
        page = self.paginate_queryset(queryset.rows())
        response = self.get_paginated_response(IssueSerializer(page, many=True).data)
        response["ETag"] = etag
        return response

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
        # Not read here: the service reads the row once, locked. The company only when the body
        # names an agent (the board's checkout), to find that agent in it.
        issues = self.get_queryset().by_ref(pk)
        company = SimpleLazyObject(lambda: found(issues.select_related("company")).company)
        serializer = CheckoutSerializer(
            data=request.data, context={"company": company, "actor": self.actor}
        )
        serializer.is_valid(raise_exception=True)
        issue = services.issue_checkout(
            actor=self.actor,
            issues=issues,
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
        runs = HeartbeatRun.objects.for_issue(issue.pk, company_id=issue.company_id)[:200]
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


class IssueActivityViewSet(IssueLookupMixin, ActivityViewSet):
    """Every row about the issue and its comments (and, later, documents and attachments)."""

    def get_base_queryset(self):
        issue = self.issue_by_ref(self.kwargs["issue_pk"])
        return ActivityEvent.objects.about_issue(issue.pk)
