"""The `/v1` envelope: every success is `{"data": ..., "meta": {"requestId", ...}}` (DESIGN §8).

Views return the object or the list as `/api` views do; a list's page adds `nextCursor` and
`hasMore` (`paperclip.v1.pagination`). Errors arrive already shaped by `paperclip.v1.errors` and
pass through. Ids are written as stored (`iss_01m8...`), 003's form.
"""

from __future__ import annotations

from rest_framework.renderers import JSONRenderer

from paperclip.api.errors import request_id


class EnvelopeRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        context = renderer_context or {}
        response, request = context.get("response"), context.get("request")
        if response is not None and response.status_code == 204:
            return b""  # No Content: no envelope either (a body would contradict the status)
        if response is not None and response.status_code < 400 and request is not None:
            meta = {"requestId": request_id(request), **getattr(response, "meta", {})}
            data = {"data": data, "meta": meta}
        return super().render(data, accepted_media_type, renderer_context)
