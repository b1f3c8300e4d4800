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
import uuid
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
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from rest_framework import exceptions
from rest_framework.response import Response

from paperclip import errors

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
    errors.Unavailable: 503,
}


def status_of(exc: errors.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 400


def _body(error: str, code: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error, "code": code}
    if details is not None:
        body["details"] = details
    return body


def _as_api_error(exc: Exception) -> tuple[int, dict[str, Any], dict[str, str]] | None:
    """Map any exception we know to (status, body, headers)."""
    if isinstance(exc, TransitionNotAllowed | ConcurrentTransition):
        exc = errors.from_fsm(exc)
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is down, restarting or refusing connections: the client may retry.
        body = _body("Database unavailable", "database_unavailable")
        return 503, body, {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
    if isinstance(exc, errors.DomainError):
        status_code = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else {}
        if status_code == 503:
            headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return status_code, _body(exc.message, exc.code, exc.details), headers
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return 401, _body("Unauthorized", "unauthorized"), {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, exceptions.ValidationError):
        return 400, _body("Validation failed", "validation_error", exc.detail), {}
    if isinstance(exc, DjangoValidationError):
        details = (
            exc.message_dict if hasattr(exc, "error_dict") else {"nonFieldErrors": exc.messages}
        )
        return 400, _body("Validation failed", "validation_error", details), {}
    if isinstance(exc, exceptions.ParseError):
        return 400, _body(f"Malformed request body: {exc.detail}", "parse_error"), {}
    if isinstance(exc, (exceptions.PermissionDenied, DjangoPermissionDenied)):
        message = str(getattr(exc, "detail", "") or "Forbidden")
        if message == exceptions.PermissionDenied.default_detail:
            message = "Forbidden"
        return 403, _body(message, "forbidden"), {}
    if isinstance(exc, (exceptions.NotFound, Http404)):
        return 404, _body("Not found", "not_found"), {}
    if isinstance(exc, exceptions.MethodNotAllowed):
        return 405, _body(str(exc.detail), "method_not_allowed"), {}
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return 415, _body(str(exc.detail), "unsupported_media_type"), {}
    if isinstance(exc, exceptions.NotAcceptable):
        return 406, _body(str(exc.detail), "not_acceptable"), {}
    if isinstance(exc, exceptions.Throttled):
        headers = {"Retry-After": str(exc.wait)} if exc.wait else {}
        return 429, _body(str(exc.detail), "throttled"), headers
    if isinstance(exc, exceptions.APIException):
        return exc.status_code, _body(str(exc.detail), exc.default_code), {}
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return 413, _body("Request body too large", "payload_too_large", {"maxBytes": limit}), {}
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return 400, _body("Too many fields in the request body", "too_many_fields"), {}
    if isinstance(exc, DisallowedHost):
        return 400, _body("Invalid Host header", "invalid_host"), {}
    if isinstance(exc, SuspiciousOperation):
        return 400, _body("Bad request", "bad_request"), {}
    return None


def is_api(request: HttpRequest) -> bool:
    """Whether the request is for the `/api` dialect (the admin keeps Django's pages)."""
    path = request.path_info
    return path == "/api" or path.startswith("/api/")


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(request: HttpRequest) -> str:
    """The request's id, for the log and the client: the proxy's `X-Request-Id` when it sends a
    sane one (so both logs join up), else a fresh one. The same for every call on a request."""
    if not hasattr(request, "paperclip_request_id"):
        sent = request.META.get("HTTP_X_REQUEST_ID", "")
        request.paperclip_request_id = sent if _REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
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
    body = _body("Internal server error", "internal_error", {"requestId": rid})
    return _json(500, body, {"X-Request-Id": rid})


def api_error_response(request: HttpRequest, exc: BaseException) -> JsonResponse:
    """The `/api` answer to an exception raised outside DRF's handler; never an HTML page."""
    mapped = _as_api_error(exc) if isinstance(exc, Exception) else None
    if mapped is None:
        return _internal_error(request, exc)
    _log_if_database_down(request, exc)
    return _json(*mapped)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: render every known error as `{"error", "code", "details"}`."""
    mapped = _as_api_error(exc)
    if mapped is None:
        return None  # unknown: ApiEdgeMiddleware logs it and answers the 500 envelope
    status_code, body, headers = mapped
    _log_if_database_down(context.get("request"), exc)
    # Imported here: rest_framework.views loads the authentication classes, which raise ours.
    from rest_framework.views import set_rollback

    # The request is one transaction: whatever it wrote before failing is rolled back.
    set_rollback()
    return Response(body, status=status_code, headers=headers)


@csrf_exempt  # answer 404 JSON whatever the method, never Django's CSRF page
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Unknown `/api/*` routes answer JSON, not Django's HTML page."""
    return JsonResponse(_body("Not found", "not_found"), status=404)


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
