"""`/v1` task comments (reference 003, DESIGN §8): post one, list them newest first in cursor
pages. The same comments and service as `/api`'s; `author` names who wrote it
(`user:<username>` or `agent:<id>`) and, when sent, must name the caller."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.response import Response

from issues.models import Comment
from issues.services.comments import comment_create
from issues.v1.scope import TaskScopeMixin
from paperclip.api.fields import DateTimeField
from paperclip.api.serializers import CamelSerializer
from paperclip.api.viewsets import ID, route
from paperclip.v1.viewsets import V1ViewSet


class TaskCommentSerializer(serializers.ModelSerializer):
    taskId = serializers.CharField(source="issue_id")
    author = serializers.SerializerMethodField()
    text = serializers.CharField(source="body")
    runId = serializers.CharField(source="run_id", allow_null=True)
    createdAt = DateTimeField(source="created_at")

    class Meta:
        model = Comment
        fields = ["id", "taskId", "author", "text", "runId", "createdAt"]
        read_only_fields = fields

    def get_author(self, comment: Comment) -> str | None:
        if comment.author_agent_id:
            return f"agent:{comment.author_agent_id}"
        if comment.author_user_id:
            return f"user:{comment.author_user.get_username()}"
        return None


class TaskCommentCreateSerializer(CamelSerializer):
    text = serializers.CharField(max_length=100_000)
    author = serializers.CharField(
        max_length=200, required=False, help_text="`user:<username>` or `agent:<id>`: the caller"
    )


@extend_schema_view(
    list=extend_schema(tags=["v1"], responses=TaskCommentSerializer(many=True)),
    create=extend_schema(
        tags=["v1"],
        request=TaskCommentCreateSerializer,
        responses={201: TaskCommentSerializer},
    ),
)
class TaskCommentViewSet(TaskScopeMixin, V1ViewSet):
    queryset = Comment.objects.all()
    serializer_class = TaskCommentSerializer
    # Newest first, as the task list; the keyset never repeats or skips one added meanwhile.
    ordering_keys = (("created_at", True), ("id", True))

    def get_base_queryset(self):
        return Comment.objects.filter(issue=self.task).select_related("author_user")

    def list(self, request, company_pk: str, issue_pk: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TaskCommentSerializer(page, many=True).data)

    def create(self, request, company_pk: str, issue_pk: str):
        serializer = TaskCommentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = comment_create(
            actor=self.actor_on(self.task),
            issue=self.task,
            body=serializer.validated_data["text"],
            author=serializer.validated_data.get("author"),
        )
        return Response(TaskCommentSerializer(comment).data, status=status.HTTP_201_CREATED)


urlpatterns = [
    route(
        rf"companies/(?P<company_pk>{ID})/issues/(?P<issue_pk>{ID})/comments",
        TaskCommentViewSet.as_view({"get": "list", "post": "create"}),
        name="v1-task-comments",
    ),
]
