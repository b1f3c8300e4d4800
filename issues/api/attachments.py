"""Issue attachments: upload (multipart), list, download, delete."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from issues import services
from issues.api.lookups import IssueLookupMixin
from issues.models import Attachment, Comment, Issue
from issues.storage import is_download_only
from paperclip.api.parsers import FormParser, MultiPartParser
from paperclip.api.serializers import CamelModelSerializer, CamelSerializer
from paperclip.api.viewsets import ScopedViewSet
from paperclip.api.wire import wire_id
from paperclip.errors import NotFound


class AttachmentSerializer(CamelModelSerializer):
    issue_comment_id = serializers.CharField(source="comment_id", read_only=True, allow_null=True)
    name = serializers.CharField(source="original_name", read_only=True)
    content_path = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = [
            "id",
            "company_id",
            "issue_id",
            "issue_comment_id",
            "name",
            "content_type",
            "byte_size",
            "sha256",
            "content_path",
            "created_by_agent_id",
            "created_by_user_id",
            "created_at",
        ]
        read_only_fields = fields

    def get_content_path(self, attachment: Attachment) -> str:
        return f"/api/attachments/{wire_id(attachment.pk)}/content"


class AttachmentUploadSerializer(CamelSerializer):
    # Empty files pass here on purpose: the storage rules refuse them with 422 (DESIGN §6),
    # where DRF's own check would answer 400.
    file = serializers.FileField(allow_empty_file=True)
    issue_comment_id = serializers.CharField(required=False, allow_null=True, default=None)


class AttachmentViewSet(IssueLookupMixin, ScopedViewSet):
    queryset = Attachment.objects.all()
    serializer_class = AttachmentSerializer
    parser_classes = [MultiPartParser, FormParser]

    def perform_content_negotiation(self, request, force=False):
        # A download is the stored file in its own type whatever `Accept` says (browsers send
        # image/*, text/html...); its errors stay JSON. DRF alone would answer 406.
        return super().perform_content_negotiation(request, force=force or self.action == "content")

    @extend_schema(
        request={"multipart/form-data": AttachmentUploadSerializer},
        responses={201: AttachmentSerializer},
    )
    def create(self, request, company_pk: str, issue_pk: str):
        """Upload a file (`file`, optional `issueCommentId`): 201 with its `contentPath`.

        422 when the file is empty (`attachment_empty`), larger than
        `PAPERCLIP_ATTACHMENT_MAX_BYTES` (`attachment_too_large`) or of a type not allowed
        (`attachment_type_refused`); no `file` part at all is a 400. The stored name drops path
        parts and control characters.
        """
        issue = self.issue_by_ref(issue_pk, Issue.objects.for_company(self.company.pk))
        serializer = AttachmentUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = None
        if comment_id := serializer.validated_data["issue_comment_id"]:
            comment = Comment.objects.filter(issue=issue, pk=comment_id).first()
            if comment is None:
                raise serializers.ValidationError(
                    {"issueCommentId": ["Names no comment of this issue."]}
                )
        attachment = services.attachment_create(
            actor=self.actor, issue=issue, upload=serializer.validated_data["file"], comment=comment
        )
        return Response(AttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=AttachmentSerializer(many=True))
    def list(self, request, issue_pk: str):
        issue = self.issue_by_ref(issue_pk)
        attachments = self.get_queryset().filter(issue=issue).order_by("created_at", "id")
        return Response(AttachmentSerializer(attachments, many=True).data)

    @extend_schema(
        responses={
            (200, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The file's bytes, with the content type it was stored with "
                "(one of PAPERCLIP_ATTACHMENT_TYPES).",
            )
        }
    )
    def content(self, request, pk: str):
        """The file, streamed. Anything a browser could execute comes as a download."""
        attachment = self.get_object()
        try:
            handle = default_storage.open(attachment.file.name, "rb")
        except (FileNotFoundError, OSError):
            raise NotFound() from None
        response = FileResponse(
            handle,
            content_type=attachment.content_type,
            as_attachment=is_download_only(attachment.content_type),
            filename=attachment.original_name,
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response

    def destroy(self, request, pk: str):
        """The uploader or the board; the stored object goes once the delete commits."""
        services.attachment_delete(actor=self.actor, attachment=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
