"""Issue documents with revisions: `/api/issues/{id}/documents[/{key}[/revisions]]`."""

from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from issues import services
from issues.api.issues import DocumentSerializer
from issues.api.lookups import IssueLookupMixin
from issues.models import (
    DOCUMENT_BODY_MAX,
    DOCUMENT_KEY,
    DOCUMENT_KEY_MAX,
    Document,
    DocumentRevision,
)
from paperclip.api.serializers import CamelModelSerializer, CamelSerializer
from paperclip.api.viewsets import ScopedViewSet
from paperclip.errors import ValidationFailed
from paperclip.ids import parse_id

KEY_PATTERN = re.compile(DOCUMENT_KEY)


class RevisionSerializer(CamelModelSerializer):
    class Meta:
        model = DocumentRevision
        fields = [
            "id",
            "document_id",
            "number",
            "title",
            "body",
            "change_summary",
            "author_agent_id",
            "author_user_id",
            "run_id",
            "created_at",
        ]
        read_only_fields = fields


class DocumentPutSerializer(CamelSerializer):
    title = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    format = serializers.ChoiceField(choices=Document.Format.choices, default="markdown")
    body = serializers.CharField(allow_blank=True, trim_whitespace=False)
    change_summary = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default=""
    )
    base_revision_id = serializers.CharField(required=False, allow_null=True, default=None)

    def validate_base_revision_id(self, value: str | None) -> str | None:
        # Either wire form; an id that is neither stays as sent, so the 409 names it.
        return (parse_id(value, "rev") or value) if value else value

    def validate_body(self, value: str) -> str:
        if len(value.encode()) > DOCUMENT_BODY_MAX:
            raise serializers.ValidationError(f"At most {DOCUMENT_BODY_MAX} bytes.")
        return value


def checked_key(key: str) -> str:
    if len(key) > DOCUMENT_KEY_MAX or not KEY_PATTERN.match(key):
        raise ValidationFailed(
            "Invalid document key",
            code="validation_error",
            details={"key": [f"Lowercase letters, digits, _ and -; at most {DOCUMENT_KEY_MAX}."]},
        )
    return key


class DocumentViewSet(IssueLookupMixin, ScopedViewSet):
    queryset = Document.objects.all()
    serializer_class = DocumentSerializer

    def get_base_queryset(self):
        issue = self.issue_by_ref(self.kwargs["issue_pk"])
        return Document.objects.filter(issue=issue).select_related("latest_revision", "issue")

    lookup_field = "key"

    def lookup_value(self, ref: str) -> str:
        return checked_key(ref)

    @extend_schema(responses=DocumentSerializer(many=True))
    def list(self, request, issue_pk: str):
        """Every document of the issue, with bodies, in key order."""
        return Response(DocumentSerializer(self.get_queryset().order_by("key"), many=True).data)

    def retrieve(self, request, issue_pk: str, key: str):
        return Response(DocumentSerializer(self.get_object()).data)

    # Not named `put`: Django's dispatch looks an HTTP verb up as a method name, so a `put`
    # method would also answer PUT on the list route (no key: a 500 instead of a 405).
    @extend_schema(
        request=DocumentPutSerializer, responses={200: DocumentSerializer, 201: DocumentSerializer}
    )
    def upsert(self, request, issue_pk: str, key: str):
        """Create (201, no baseRevisionId) or revise (200, the current baseRevisionId)."""
        issue = self.issue_by_ref(issue_pk)
        serializer = DocumentPutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        document, created = services.document_put(
            actor=self.actor,
            issue=issue,
            key=checked_key(key),
            title=data["title"],
            body=data["body"],
            change_summary=data["change_summary"],
            base_revision_id=data["base_revision_id"],
        )
        return Response(
            DocumentSerializer(document).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    def destroy(self, request, issue_pk: str, key: str):
        services.document_delete(actor=self.actor, document=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=RevisionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def revisions(self, request, issue_pk: str, key: str):
        """Every revision, newest first."""
        document = self.get_object()
        return Response(RevisionSerializer(document.revisions.order_by("-number"), many=True).data)
