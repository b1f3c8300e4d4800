"""Approvals: agents ask, the board decides (approve / reject / request revision)."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from issues import services
from issues.api.issues import IssueRefField, IssueSerializer
from issues.api.lookups import IssueLookupMixin
from issues.models import Approval, ApprovalComment
from paperclip.api.fields import CompanyScopedRelatedField
from paperclip.api.serializers import CamelModelSerializer, CamelSerializer
from paperclip.api.viewsets import ScopedViewSet


class ApprovalSerializer(CamelModelSerializer):
    issue_ids = serializers.SerializerMethodField()

    class Meta:
        model = Approval
        fields = [
            "id",
            "company_id",
            "type",
            "status",
            "payload",
            "issue_ids",
            "requested_by_agent_id",
            "requested_by_user_id",
            "decided_by_user_id",
            "decision_note",
            "decided_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_issue_ids(self, approval: Approval) -> list[str]:
        return [issue.pk for issue in approval.issues.all()]


class ApprovalCreateSerializer(CamelSerializer):
    type = serializers.ChoiceField(choices=Approval.Type.choices)
    payload = serializers.DictField(required=False, default=dict)
    issue_ids = IssueRefField(many=True, required=False, default=list, source="issues")
    # Paperclip's clients name the requester; it must be the caller (the service checks).
    requested_by_agent_id = serializers.CharField(required=False, allow_null=True)


class DecisionSerializer(CamelSerializer):
    """The board's note on a decision, as `note` or as Paperclip's clients name it,
    `decisionNote` (which they may send as null)."""

    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    decision_note = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=10_000, write_only=True
    )
    # Paperclip's clients may name the deciding user; it must be the caller (the service checks).
    decided_by_user_id = serializers.CharField(required=False, allow_null=True)

    def validate(self, attrs):
        if "decision_note" in attrs:
            if "note" in self.initial_data:
                raise serializers.ValidationError(
                    {"decisionNote": ["Send note or decisionNote, not both."]}
                )
            attrs["note"] = attrs.pop("decision_note") or ""
        return attrs


class ResubmitSerializer(CamelSerializer):
    payload = serializers.DictField(required=False, allow_null=True, default=None)


class ApprovalCommentSerializer(CamelModelSerializer):
    class Meta:
        model = ApprovalComment
        fields = ["id", "approval_id", "author_agent_id", "author_user_id", "body", "created_at"]
        read_only_fields = fields


class CommentBodySerializer(CamelSerializer):
    body = serializers.CharField(max_length=100_000)


class ApprovalLinkSerializer(CamelSerializer):
    approval_id = CompanyScopedRelatedField(model=Approval, source="approval")


class ApprovalFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Approval.Status.choices)
    type = django_filters.ChoiceFilter(choices=Approval.Type.choices)

    class Meta:
        model = Approval
        fields: list[str] = []


class ApprovalViewSet(IssueLookupMixin, ScopedViewSet):
    queryset = Approval.objects.all()
    serializer_class = ApprovalSerializer
    filterset_class = ApprovalFilter

    def get_base_queryset(self):
        return Approval.objects.prefetch_related("issues")

    def _render(self, approval: Approval, **kwargs) -> Response:
        return Response(
            ApprovalSerializer(self.get_base_queryset().get(pk=approval.pk)).data, **kwargs
        )

    def list(self, request, company_pk: str):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ApprovalSerializer(page, many=True).data)

    @extend_schema(request=ApprovalCreateSerializer, responses={201: ApprovalSerializer})
    def create(self, request, company_pk: str):
        """An agent or the board asks for a decision, linking the issues it concerns."""
        serializer = ApprovalCreateSerializer(data=request.data, context={"company": self.company})
        serializer.is_valid(raise_exception=True)
        approval = services.approval_create(
            actor=self.actor, company=self.company, **serializer.validated_data
        )
        return self._render(approval, status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk: str):
        return self._render(self.get_object())

    @extend_schema(responses=IssueSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"])
    def issues(self, request, pk: str):
        """The issues the approval concerns."""
        approval = self.get_object()
        issues = approval.issues.with_list_relations().order_by("priority", "-updated_at")
        return Response(IssueSerializer(issues, many=True).data)

    def _decide(self, request, decision: str) -> Response:
        serializer = DecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        approval = services.approval_decide(
            actor=self.actor,
            approval=self.get_object(),
            decision=decision,
            note=serializer.validated_data["note"],
            decided_by_user_id=serializer.validated_data.get("decided_by_user_id"),
        )
        return self._render(approval)

    @extend_schema(request=DecisionSerializer, responses=ApprovalSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk: str):
        """Board only; repeating it changes nothing. Wakes the requesting agent."""
        return self._decide(request, "approve")

    @extend_schema(request=DecisionSerializer, responses=ApprovalSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk: str):
        return self._decide(request, "reject")

    @extend_schema(request=DecisionSerializer, responses=ApprovalSerializer)
    @action(detail=True, methods=["post"], url_path="request-revision")
    def request_revision(self, request, pk: str):
        return self._decide(request, "request_revision")

    @extend_schema(request=ResubmitSerializer, responses=ApprovalSerializer)
    @action(detail=True, methods=["post"])
    def resubmit(self, request, pk: str):
        """The requesting agent sends the revised request back."""
        serializer = ResubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        approval = services.approval_resubmit(
            actor=self.actor,
            approval=self.get_object(),
            payload=serializer.validated_data["payload"],
        )
        return self._render(approval)

    @extend_schema(responses=ApprovalCommentSerializer(many=True), filters=False)
    def comments(self, request, pk: str):
        approval = self.get_object()
        return Response(ApprovalCommentSerializer(approval.comments.all(), many=True).data)

    @extend_schema(request=CommentBodySerializer, responses={201: ApprovalCommentSerializer})
    def add_comment(self, request, pk: str):
        approval = self.get_object()
        serializer = CommentBodySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = services.approval_comment_create(
            actor=self.actor, approval=approval, body=serializer.validated_data["body"]
        )
        return Response(ApprovalCommentSerializer(comment).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=ApprovalSerializer(many=True), filters=False)
    def for_issue(self, request, issue_pk: str):
        """The approvals linked to an issue."""
        issue = self.issue_by_ref(issue_pk)
        return Response(
            ApprovalSerializer(self.get_queryset().filter(issues=issue), many=True).data
        )

    @extend_schema(request=ApprovalLinkSerializer, responses={201: ApprovalSerializer})
    def link_issue(self, request, issue_pk: str):
        """Link an approval of the same company to the issue (idempotent)."""
        issue = self.issue_by_ref(issue_pk)
        serializer = ApprovalLinkSerializer(data=request.data, context={"company": issue.company})
        serializer.is_valid(raise_exception=True)
        approval = services.approval_link_issue(
            actor=self.actor, approval=serializer.validated_data["approval"], issue=issue
        )
        return self._render(approval, status=status.HTTP_201_CREATED)
