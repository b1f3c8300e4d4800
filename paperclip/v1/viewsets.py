"""The base of every `/v1` resource: `/api`'s scoping and company nesting, `/v1`'s envelope and
pages. Routes live under `/v1/companies/{company_pk}/...`: a company the caller cannot see is a
404, and so is any object outside it."""

from __future__ import annotations

from paperclip.api.parsers import JSONParser
from paperclip.api.viewsets import ScopedViewSet
from paperclip.v1.pagination import CursorPagination
from paperclip.v1.parsers import FormLabelledJSONParser
from paperclip.v1.renderers import EnvelopeRenderer


class V1ViewSet(ScopedViewSet):
    renderer_classes = [EnvelopeRenderer]
    parser_classes = [JSONParser, FormLabelledJSONParser]
    pagination_class = CursorPagination
