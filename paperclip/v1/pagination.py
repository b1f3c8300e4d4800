"""`/v1` pages (DESIGN §8): `limit` (default 50, at most 200) and an opaque `cursor`; the page's
`meta` says `nextCursor` (or null) and `hasMore`. The keyset walk is `/api`'s; the cursor
carries ids as `/v1` writes them (prefixed)."""

from __future__ import annotations

from rest_framework.response import Response

from paperclip.api.pagination import KeysetPagination


class CursorPagination(KeysetPagination):
    default_limit = 50
    max_limit = 200
    write_id = staticmethod(lambda value: value)

    def get_paginated_response(self, data) -> Response:
        response = Response(data)
        response.meta = {"nextCursor": self.next_cursor, "hasMore": self.next_cursor is not None}
        return response

    def get_paginated_response_schema(self, schema):
        return schema
