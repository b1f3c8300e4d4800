"""The API's errors and the one exception handler that renders them.

Every error on `/api` is `{"error": "<message>", "code": "<machine_code>", "details": ...}`.
Models and services raise the domain errors of `paperclip.errors` (views may raise them too, or
DRF's own); this module alone decides their status codes. Nothing builds an error `Response` by
hand.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from rest_framework import exceptions
from rest_framework.response import Response

from paperclip import errors

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
    if isinstance(exc, errors.DomainError):
        status_code = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else {}
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
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: render every known error as `{"error", "code", "details"}`."""
    mapped = _as_api_error(exc)
    if mapped is None:
        return None  # unknown: Django's 500 handling (and its logging) takes over
    status_code, body, headers = mapped
    # Imported here: rest_framework.views loads the authentication classes, which raise ours.
    from rest_framework.views import set_rollback

    # The request is one transaction: whatever it wrote before failing is rolled back.
    set_rollback()
    return Response(body, status=status_code, headers=headers)


@csrf_exempt  # answer 404 JSON whatever the method, never Django's CSRF page
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Unknown `/api/*` routes answer JSON, not Django's HTML page."""
    return JsonResponse(_body("Not found", "not_found"), status=404)
