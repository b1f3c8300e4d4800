"""The API's errors and the one exception handler that renders them.

Every error on `/api` is `{"error": "<message>", "code": "<machine_code>", "details": ...}`.
Models and services raise the domain errors of `paperclip.errors` (views may raise them too, or
DRF's own); this module alone decides their status codes. Nothing builds an error `Response` by
hand.

Errors raised outside a DRF view are rendered here too, so `/api` never answers an HTML page:
`paperclip.api.middleware.ApiEdgeMiddleware` hands over what a view (or the request's
transaction) raised, and `bad_request` / `server_error` are the URLconf's handler400/handler500
for what other middleware raised (a disallowed Host, a body over the size limit). The database
being down is 503 with `Retry-After`; anything unexpected is a logged 500 naming a request id.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    DisallowedHost,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError, connections
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from rest_framework import exceptions
from rest_framework.response import Response

from paperclip import errors
from paperclip.ids import new_id

logger = logging.getLogger("paperclip.api")

# Seconds a client should wait before retrying while the database is unreachable.
DATABASE_RETRY_AFTER_SECONDS = 5
# The `/api` status of each domain error class (the most specific class listed wins).
STATUS_OF: dict[type[errors.DomainError], int] = {
    errors.ValidationFailed: 400,
    errors.NotAuthenticated: 401,
    errors.NotAllowed: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PreconditionFailed: 412,
    errors.Unprocessable: 422,
    errors.TooManyRequests: 429,
    errors.Unavailable: 503,
}


def status_of(exc: errors.DomainError, statuses=STATUS_OF) -> int:
    for cls in type(exc).__mro__:
        if cls in statuses:
            return statuses[cls]
    return 400


def _failure(
    exc: Exception, statuses: dict[type[errors.DomainError], int]
) -> tuple[int, str, str, Any, dict[str, str]] | None:
    """Map any exception we know to (status, message, code, details, headers); each dialect
    renders that in its own body."""
    if isinstance(exc, TransitionNotAllowed | ConcurrentTransition):
        exc = errors.from_fsm(exc)
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is down, restarting or refusing connections: the client may retry.
        retry = {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
        return 503, "Database unavailable", "database_unavailable", None, retry
    if isinstance(exc, errors.DomainError):
        status_code = status_of(exc, statuses)
        headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else {}
        if status_code == 503:
            headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        if isinstance(exc, errors.TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after)
        return status_code, exc.message, exc.code, exc.details, headers
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return 401, "Unauthorized", "unauthorized", None, {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, exceptions.ValidationError):
        return 400, "Validation failed", "validation_error", exc.detail, {}
    if isinstance(exc, DjangoValidationError):
        details = (
            exc.message_dict if hasattr(exc, "error_dict") else {"nonFieldErrors": exc.messages}
        )
        return 400, "Validation failed", "validation_error", details, {}
    if isinstance(exc, exceptions.ParseError):
        return 400, f"Malformed request body: {exc.detail}", "parse_error", None, {}
    if isinstance(exc, (exceptions.PermissionDenied, DjangoPermissionDenied)):
        message = str(getattr(exc, "detail", "") or "Forbidden")
        if message == exceptions.PermissionDenied.default_detail:
            message = "Forbidden"
        return 403, message, "forbidden", None, {}
    if isinstance(exc, (exceptions.NotFound, Http404)):
        return 404, "Not found", "not_found", None, {}
    if isinstance(exc, exceptions.MethodNotAllowed):
        return 405, str(exc.detail), "method_not_allowed", None, {}
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return 415, str(exc.detail), "unsupported_media_type", None, {}
    if isinstance(exc, exceptions.NotAcceptable):
        return 406, str(exc.detail), "not_acceptable", None, {}
    if isinstance(exc, exceptions.Throttled):
        headers = {"Retry-After": str(exc.wait)} if exc.wait else {}
        return 429, str(exc.detail), "throttled", None, headers
    if isinstance(exc, exceptions.APIException):
        return exc.status_code, str(exc.detail), exc.default_code, None, {}
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return 413, "Request body too large", "payload_too_large", {"maxBytes": limit}, {}
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return 400, "Too many fields in the request body", "too_many_fields", None, {}
    if isinstance(exc, DisallowedHost):
        return 400, "Invalid Host header", "invalid_host", None, {}
    if isinstance(exc, SuspiciousOperation):
        return 400, "Bad request", "bad_request", None, {}
    return None


def _api_body(message: str, code: str, details: Any, request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message, "code": code}
    if details is not None:
        body["details"] = details
    return body


@dataclass(frozen=True)
class Dialect:
    """How one API dialect answers a failure: the status of each domain error and the body."""

    prefix: str
    statuses: dict[type[errors.DomainError], int]
    body: Callable[[str, str, Any, str], dict[str, Any]]
    # Codes the dialect names otherwise (`/v1`'s `rate_limited` for `throttled`).
    codes: dict[str, str] = field(default_factory=dict)

    def owns(self, request: HttpRequest) -> bool:
        path = request.path_info
        return path == self.prefix or path.startswith(f"{self.prefix}/")

    def answer(self, request: HttpRequest | None, exc: Exception) -> tuple[int, dict, dict] | None:
        """(status, body, headers) for an exception we know, else None."""
        failure = _failure(exc, self.statuses)
        if failure is None:
            return None
        status_code, message, code, details, headers = failure
        code = self.codes.get(code, code)
        rid = request_id(request) if request is not None else ""
        return status_code, self.body(message, code, details, rid), headers


API = Dialect("/api", STATUS_OF, _api_body)


def dialect_of(request: HttpRequest) -> Dialect | None:
    """The dialect a request speaks, by its path; None outside the APIs (the admin, /)."""
    from paperclip.v1.errors import V1  # the /v1 dialect builds on this module

    for dialect in (API, V1):
        if dialect.owns(request):
            return dialect
    return None


def is_api(request: HttpRequest) -> bool:
    """Whether the request is for an API dialect (`/api`, `/v1`; the admin keeps Django's
    pages)."""
    return dialect_of(request) is not None


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(request: HttpRequest) -> str:
    """The request's id, for the log and the client: the proxy's `X-Request-Id` when it sends a
    sane one (so both logs join up), else a fresh one. The same for every call on a request."""
    request = getattr(request, "_request", request)  # DRF's Request wraps Django's
    if not hasattr(request, "paperclip_request_id"):
        sent = request.META.get("HTTP_X_REQUEST_ID", "")
        request.paperclip_request_id = sent if _REQUEST_ID.fullmatch(sent) else new_id("req")
    return request.paperclip_request_id


def _log_if_database_down(request: HttpRequest | None, exc: BaseException) -> None:
    if isinstance(exc, OperationalError | InterfaceError):
        where = f" on {request.method} {request.path}" if request is not None else ""
        logger.error("Database unavailable%s: %s", where, exc)


def _json(status_code: int, body: dict[str, Any], headers: dict[str, str]) -> JsonResponse:
    return JsonResponse(body, status=status_code, headers=headers)


def _internal_error(request: HttpRequest, exc: BaseException | None) -> JsonResponse:
    """A bug: logged with its traceback under a request id, which the body names so an operator
    can find the log line."""
    rid = request_id(request)
    logger.error(
        "Internal server error on %s %s (request id %s)",
        request.method,
        request.path,
        rid,
        exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None,
    )
    dialect = dialect_of(request) or API
    body = dialect.body("Internal server error", "internal_error", {"requestId": rid}, rid)
    return _json(500, body, {"X-Request-Id": rid})


def api_error_response(request: HttpRequest, exc: BaseException) -> JsonResponse:
    """The API's answer to an exception raised outside DRF's handler; never an HTML page."""
    dialect = dialect_of(request) or API
    mapped = dialect.answer(request, exc) if isinstance(exc, Exception) else None
    if mapped is None:
        return _internal_error(request, exc)
    _log_if_database_down(request, exc)
    return _json(*mapped)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: render every known error in the request's dialect (`/api`:
    `{"error", "code", "details"}`)."""
    request = context.get("request")
    dialect = (dialect_of(request) if request is not None else None) or API
    mapped = dialect.answer(request, exc)
    if mapped is None:
        return None  # unknown: ApiEdgeMiddleware logs it and answers the 500 envelope
    status_code, body, headers = mapped
    _log_if_database_down(request, exc)
    _roll_back_the_request(request)
    return Response(body, status=status_code, headers=headers)


def _roll_back_the_request(request) -> None:
    """The request is one transaction (ATOMIC_REQUESTS): whatever it wrote before failing is
    rolled back. A view that opted out (`transaction.non_atomic_requests`, each bulk task its
    own transaction) has no request transaction; the atomic block around it, if any, is not
    its to roll back."""
    view = getattr(getattr(request, "resolver_match", None), "func", None)
    opted_out = getattr(view, "_non_atomic_requests", set())
    for connection in connections.all(initialized_only=True):
        if (
            connection.settings_dict["ATOMIC_REQUESTS"]
            and connection.in_atomic_block
            and connection.alias not in opted_out
        ):
            connection.set_rollback(True)


@csrf_exempt  # answer 404 JSON whatever the method, never Django's CSRF page
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Unknown `/api/*` routes answer JSON, not Django's HTML page."""
    return api_error_response(request, Http404())


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: what middleware refused before any view (a disallowed Host, a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE) answers JSON on `/api`; the admin keeps Django's page."""
    if is_api(request):
        return api_error_response(request, exception)
    return defaults.bad_request(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an exception raised outside the view (in a middleware) answers JSON on `/api`,
    a 503 when the database is down; the admin keeps Django's page."""
    if not is_api(request):
        return defaults.server_error(request)
    exc = sys.exc_info()[1]
    return _internal_error(request, None) if exc is None else api_error_response(request, exc)
