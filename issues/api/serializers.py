"""Issue and comment serializers: inputs validate, outputs render. No domain rules here."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from agents.models import Agent, Team
from issues.models import Comment, Document, Goal, Issue, Label, Priority, Project, Status
from paperclip.api.fields import CompanyScopedRelatedField
from paperclip.api.serializers import CamelModelSerializer, CamelSerializer, LabelChoiceField


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


class LabelSummarySerializer(CamelModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "color"]


class IssueSerializer(CamelModelSerializer):
    """The issue as every list and write answers it."""

    priority = LabelChoiceField(Priority)
    labels = LabelSummarySerializer(many=True, read_only=True)
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
        return [label.pk for label in issue.labels.all()]

    def get_dependency_ids(self, issue: Issue) -> list[str]:
        return [dependency.pk for dependency in issue.dependencies.all()]


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
    billing_code = serializers.CharField(max_length=100, allow_blank=True, required=False)
    budget_usd = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, allow_null=True, required=False
    )
    due_at = serializers.DateTimeField(allow_null=True, required=False)

    def validate(self, attrs):
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


DATETIME = serializers.DateTimeField()


class InboxItemSerializer(CamelModelSerializer):
    """A compact issue for an agent's inbox, with the run working on it (if live)."""

    priority = LabelChoiceField(Priority)
    active_run = serializers.SerializerMethodField()

    class Meta:
        model = Issue
        fields = [
            "id",
            "identifier",
            "title",
            "status",
            "priority",
            "parent_id",
            "project_id",
            "goal_id",
            "updated_at",
            "active_run",
        ]
        read_only_fields = fields

    def get_active_run(self, issue: Issue) -> dict | None:
        run = issue.checkout_run
        if run is None or not run.is_live:
            return None
        # A plain dict: a serializer per row would rebuild its fields for every issue.
        return {
            "id": run.pk,
            "agentId": run.agent_id,
            "status": run.status,
            "leaseExpiresAt": DATETIME.to_representation(run.lease_expires_at),
            "isLive": True,
        }


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
        comment_id = self.context.get("wake_comment_id")
        comment = issue.comments.filter(pk=comment_id).first() if comment_id else None
        return CommentSerializer(comment).data if comment else None
