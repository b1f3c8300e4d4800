"""The `/api` JSON renderer: DRF's, writing ids in Paperclip's UUID form (`paperclip.api.wire`)."""

from __future__ import annotations

from rest_framework.renderers import JSONRenderer as DRFJSONRenderer

from paperclip.api.wire import to_wire


class JSONRenderer(DRFJSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        return super().render(to_wire(data), accepted_media_type, renderer_context)
