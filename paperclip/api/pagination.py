"""Keyset pagination for `/api` lists: plain JSON arrays, `limit` and an opaque cursor.

The next page's cursor travels in the `X-Next-Cursor` header (and a `Link: rel="next"`), so list
bodies stay the plain arrays Paperclip clients expect. A cursor encodes the sort key of the last
row, so pages stay stable while rows are inserted and no OFFSET scan grows with depth.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from paperclip.api.wire import wire_id
from paperclip.errors import ValidationFailed
from paperclip.ids import parse_id

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000

# (field name, descending?)
OrderingKeys = Sequence[tuple[str, bool]]


def parse_limit(raw: str | None, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if raw in (None, ""):
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise ValidationFailed("limit must be an integer", details={"limit": raw}) from None
    if limit < 1 or limit > maximum:
        raise ValidationFailed(f"limit must be between 1 and {maximum}", details={"limit": limit})
    return limit


def keyset_filter(keys: OrderingKeys, values: Sequence[Any]) -> Q:
    """Rows strictly after `values` in the order `keys` describes."""
    condition = Q(pk__in=[])
    for i, (name, descending) in enumerate(keys):
        step = Q(**{f"{name}__{'lt' if descending else 'gt'}": values[i]})
        for j in range(i):
            step &= Q(**{keys[j][0]: values[j]})
        condition |= step
    return condition


def order_by_args(keys: OrderingKeys) -> list[str]:
    return [f"-{name}" if descending else name for name, descending in keys]


def _encode(values: Sequence[Any], write_id=wire_id) -> str:
    # Ids in the cursor are written as the rest of the dialect writes them (UUIDs on /api): it
    # carries nothing the client could not have read.
    raw = json.dumps([v.isoformat() if hasattr(v, "isoformat") else write_id(v) for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, length: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise ValidationFailed("Invalid cursor", details={"cursor": cursor}) from None
    if not isinstance(values, list) or len(values) != length:
        raise ValidationFailed("Invalid cursor", details={"cursor": cursor})
    return values


class KeysetPagination(BasePagination):
    """Pages a queryset in the order the view names with `get_ordering_keys()`.

    A view may also offer `get_pagination_anchor()` (the key values to start after, e.g. from a
    comment id given as `after=`) instead of an opaque cursor.
    """

    max_limit = MAX_LIMIT
    default_limit = DEFAULT_LIMIT
    write_id = staticmethod(wire_id)

    def paginate_queryset(self, queryset: QuerySet, request, view=None) -> list:
        keys = view.get_ordering_keys()
        self.limit = parse_limit(
            request.query_params.get("limit"),
            default=getattr(view, "default_limit", self.default_limit),
            maximum=getattr(view, "max_limit", self.max_limit),
        )
        anchor = None
        cursor = request.query_params.get("cursor")
        if cursor:
            anchor = _decode(cursor, len(keys))
            prefix = queryset.model._meta.pk.prefix
            for i, (name, _) in enumerate(keys):
                if name in ("id", "pk"):
                    anchor[i] = parse_id(anchor[i], prefix)
                    if anchor[i] is None:
                        raise ValidationFailed("Invalid cursor", details={"cursor": cursor})
        elif hasattr(view, "get_pagination_anchor"):
            anchor = view.get_pagination_anchor()
        try:
            if anchor is not None:
                queryset = queryset.filter(keyset_filter(keys, anchor))
            rows = list(queryset.order_by(*order_by_args(keys))[: self.limit + 1])
        except (ValueError, TypeError, DjangoValidationError):
            # A cursor whose values do not fit the columns (hand-made or from another list).
            raise ValidationFailed("Invalid cursor", details={"cursor": cursor}) from None
        self.next_cursor = None
        if len(rows) > self.limit:
            rows = rows[: self.limit]
            last = rows[-1]
            self.next_cursor = _encode(
                [_key_value(last, name) for name, _ in keys], write_id=self.write_id
            )
        self.request = request
        return rows

    def get_paginated_response(self, data) -> Response:
        headers = {}
        if self.next_cursor:
            url = replace_query_param(self.request.build_absolute_uri(), "cursor", self.next_cursor)
            headers = {"X-Next-Cursor": self.next_cursor, "Link": f'<{url}>; rel="next"'}
        return Response(data, headers=headers)

    def get_paginated_response_schema(self, schema):
        return schema

    def get_schema_operation_parameters(self, view):
        maximum = getattr(view, "max_limit", self.max_limit)
        default = getattr(view, "default_limit", self.default_limit)
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": f"Rows per page (at most {maximum})",
                "schema": {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
            },
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "The `X-Next-Cursor` header of the previous page",
                "schema": {"type": "string"},
            },
        ]


def _key_value(obj: Any, name: str) -> Any:
    for part in name.split("__"):
        obj = getattr(obj, part)
    return obj
