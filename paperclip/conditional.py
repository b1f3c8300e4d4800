"""Conditional GET on both API dialects (DESIGN §10): an `ETag` on every GET answered 200, and
`If-None-Match` naming it → 304 Not Modified with no body.

A view that knows its representation's version sets its own `ETag` (an issue's `"<version>"`);
that one is kept and compared. Otherwise the tag is a hash of what the client would receive:
the body, plus the headers that carry part of a page (`X-Next-Cursor`, `Link`: a page whose rows
did not change but that now has a next page is another answer). `/v1` writes the request's id
into its envelope (`meta.requestId`, fresh on every request), so that one value is left out of
the hash; the `X-Request-Id` header is set outside this middleware and is never hashed.

Why not Django's `ConditionalGetMiddleware`: it hashes the body as sent, so every `/v1` answer
would get a new tag, and it ignores the cursor headers; it also answers a GET's `If-Match` and
`If-Modified-Since` with bare, envelope-less 412s. What this keeps of it: weak comparison for
`If-None-Match` (RFC 9110 §13.1.2: `W/"x"` matches `"x"`), `*`, and a 304 that repeats the
`ETag` and the caching headers of the 200 it stands for (§15.4.5).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from django.db.models import Count, Max, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags

from paperclip.api.errors import is_api, request_id

# Headers that are part of the representation (hashed with the body).
PAGE_HEADERS = ("X-Next-Cursor", "Link")
# Headers a 304 repeats from the 200 it stands for (RFC 9110 §15.4.5).
NOT_MODIFIED_HEADERS = ("ETag", "Cache-Control", "Content-Location", "Date", "Expires", "Vary")


class ConditionalGetMiddleware:
    """Sits inside `ApiEdgeMiddleware` (which adds `X-Request-Id` to every answer, a 304
    included) and acts on `/api` and `/v1` GET and HEAD answers only."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.method not in ("GET", "HEAD")
            or response.status_code != 200
            or response.streaming  # a file's bytes: not read into memory to be hashed
            or not is_api(request)
        ):
            return response
        if not response.has_header("ETag"):
            response["ETag"] = content_etag(request, response)
        if if_none_match(request.headers.get("If-None-Match"), response["ETag"]):
            return not_modified(response)
        return response


def content_etag(request: HttpRequest, response: HttpResponse) -> str:
    """A strong tag over the body (without `/v1`'s per-request id) and the page headers."""
    body = without_request_id(response.content, request_id(request))
    digest = hashlib.sha256(body)
    for name in PAGE_HEADERS:
        digest.update(f"\n{name}: {response.get(name, '')}".encode())
    return f'"{digest.hexdigest()[:32]}"'


def without_request_id(body: bytes, rid: str) -> bytes:
    """The body with its `"requestId": "<this request's id>"` member emptied. Only the member
    itself can match: a string inside the data has its quotes escaped."""
    member = rb'"requestId"\s*:\s*"' + re.escape(rid.encode()) + rb'"'
    return re.sub(member, b'"requestId":""', body)


def if_none_match(header: str | None, etag: str) -> bool:
    """Whether `If-None-Match` matches `etag`, by weak comparison (a `W/` prefix on either side
    does not matter; `*` matches any current representation)."""
    if not header:
        return False
    tags = parse_etags(header)
    if tags == ["*"]:
        return True
    weak = etag.removeprefix("W/")
    return any(tag.removeprefix("W/") == weak for tag in tags)


def not_modified(response: HttpResponse) -> HttpResponse:
    """304 with no body: the tag and the caching headers of the 200, and its cookies."""
    answer = HttpResponseNotModified()
    for name in NOT_MODIFIED_HEADERS:
        if response.has_header(name):
            answer[name] = response[name]
    answer.cookies = response.cookies
    return answer


def version_etag(request: HttpRequest, rows: QuerySet) -> str:
    """A list's tag read without building the list: the request (path and query, so a page,
    a filter and a cursor are each their own) and how many `rows` there are and when the
    latest of them changed, in one aggregate statement.

    Sound because every change to what a row renders moves its `updated_at` (the services
    `touch` a row they write, and the rows a change alters from elsewhere: a label renamed, a
    dependency or parent deleted), a row entering the list is such a change, and one leaving it
    changes the count."""
    seen = rows.order_by().aggregate(count=Count("pk"), latest=Max("updated_at"))
    latest = seen["latest"].isoformat() if seen["latest"] else ""
    digest = hashlib.sha256(f"{request.get_full_path()}\n{seen['count']}\n{latest}".encode())
    return f'"v{digest.hexdigest()[:32]}"'


def unchanged(request: HttpRequest, etag: str) -> HttpResponse | None:
    """304 with `etag` when the client's `If-None-Match` holds it, before the view builds what
    the tag stands for; else None (the view builds it and sets `ETag: etag` on its 200)."""
    if not if_none_match(request.headers.get("If-None-Match"), etag):
        return None
    answer = HttpResponseNotModified()
    answer["ETag"] = etag
    return answer
