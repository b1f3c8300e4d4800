"""Goals, projects and labels: plain company records with one viewset shape."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from agents.models import Agent
from issues import services
from issues.models import Goal, Label, Project
from paperclip.api.fields import CompanyScopedRelatedField
from paperclip.api.serializers import CamelModelSerializer, CamelSerializer
from paperclip.api.viewsets import ScopedViewSet


class GoalSerializer(CamelModelSerializer):
    parent_id = CompanyScopedRelatedField(
        model=Goal, source="parent", required=False, allow_null=True
    )
    owner_agent_id = CompanyScopedRelatedField(
        model=Agent, source="owner_agent", required=False, allow_null=True
    )

    class Meta:
        model = Goal
        fields = [
            "id",
            "company_id",
            "title",
            "description",
            "level",
            "status",
            "parent_id",
            "owner_agent_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "company_id", "created_at", "updated_at"]


class ProjectSerializer(CamelModelSerializer):
    goal_ids = CompanyScopedRelatedField(model=Goal, source="goals", many=True, required=False)
    # Paperclip's older single-goal name, still sent by its clients: `goalId: X` is `goalIds: [X]`.
    goal_id = CompanyScopedRelatedField(
        model=Goal, source="single_goal", write_only=True, required=False, allow_null=True
    )
    lead_agent_id = CompanyScopedRelatedField(
        model=Agent, source="lead_agent", required=False, allow_null=True
    )
    pause_reason = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id",
            "company_id",
            "name",
            "description",
            "status",
            "goal_ids",
            "goal_id",
            "lead_agent_id",
            "target_date",
            "paused_at",
            "pause_reason",
            "created_at",
            "updated_at",
        ]
        # Pausing is its own verb (POST /api/projects/{id}/pause), never a PATCH.
        read_only_fields = ["id", "company_id", "paused_at", "created_at", "updated_at"]

    def get_pause_reason(self, project: Project) -> str | None:
        return project.pause_reason or None

    def validate(self, attrs):
        if "single_goal" in attrs:
            goal = attrs.pop("single_goal")
            goals = [goal] if goal is not None else []
            if "goals" in attrs and {g.pk for g in attrs["goals"]} != {g.pk for g in goals}:
                message = "goalId and goalIds name different goals: send one of them."
                raise serializers.ValidationError({"goalId": [message], "goalIds": [message]})
            attrs["goals"] = goals
        return attrs


class ProjectPauseSerializer(CamelSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class ProjectResumeSerializer(CamelSerializer):
    """No fields: anything sent is refused as unknown."""


class LabelSerializer(CamelModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "company_id", "name", "color", "created_at"]
        read_only_fields = ["id", "company_id", "created_at"]
        validators: list = []  # the case-insensitive name rule is checked with the company known

    def validate_name(self, value: str) -> str:
        company = self.context.get("company")
        clash = Label.objects.for_company(company.pk).filter(name__iexact=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("A label with this name already exists.")
        return value


class RecordViewSet(ScopedViewSet):
    """List/create under a company; read/update/delete by id. Deleting is for the board."""

    def list(self, request, company_pk: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def create(self, request, company_pk: str):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record = services.record_create(
            actor=self.actor,
            company=self.company,
            model=self.queryset.model,
            data=serializer.validated_data,
        )
        return Response(self.get_serializer(record).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk: str):
        return Response(self.get_serializer(self.get_object()).data)

    def partial_update(self, request, pk: str):
        record = self.get_object()
        serializer = self.get_serializer(
            record, data=request.data, partial=True, context={"company": record.company}
        )
        serializer.is_valid(raise_exception=True)
        record = services.record_update(
            actor=self.actor, record=record, changes=serializer.validated_data
        )
        return Response(self.get_serializer(record).data)

    def destroy(self, request, pk: str):
        services.record_delete(actor=self.actor, record=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_serializer(self, *args, **kwargs):
        kwargs.setdefault("context", self.get_serializer_context())
        return self.serializer_class(*args, **kwargs)


class GoalViewSet(RecordViewSet):
    queryset = Goal.objects.all()
    serializer_class = GoalSerializer


class ProjectViewSet(RecordViewSet):
    queryset = Project.objects.prefetch_related("goals")
    serializer_class = ProjectSerializer
    ordering_keys = (("name", False), ("id", False))

    @extend_schema(request=ProjectPauseSerializer, responses=ProjectSerializer)
    def pause(self, request, pk: str):
        """Pause the project: its issues refuse checkout (409 `project_paused`) until it is
        resumed. The status is kept. Pausing a paused project changes nothing."""
        serializer = ProjectPauseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = services.project_pause(
            actor=self.actor, project=self.get_object(), reason=serializer.validated_data["reason"]
        )
        return Response(self.get_serializer(project).data)

    @extend_schema(request=None, responses=ProjectSerializer)
    def resume(self, request, pk: str):
        """Resume a paused project. Resuming a project that is not paused changes nothing."""
        ProjectResumeSerializer(data=request.data).is_valid(raise_exception=True)
        project = services.project_resume(actor=self.actor, project=self.get_object())
        return Response(self.get_serializer(project).data)


class LabelViewSet(RecordViewSet):
    queryset = Label.objects.all()
    serializer_class = LabelSerializer
    ordering_keys = (("name", False), ("id", False))
