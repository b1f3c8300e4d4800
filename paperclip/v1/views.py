"""`/v1` routes that belong to no resource."""

from __future__ import annotations

from rest_framework.views import APIView

from paperclip.errors import NotFound
from paperclip.v1.renderers import EnvelopeRenderer


class UnknownRoute(APIView):
    """Any other `/v1` path: 404 in the `/v1` shape, after authentication (a caller without
    credentials learns nothing of which routes exist)."""

    renderer_classes = [EnvelopeRenderer]
    schema = None

    def dispatch_any(self, request, *args, **kwargs):
        raise NotFound()

    get = post = put = patch = delete = head = options = dispatch_any
