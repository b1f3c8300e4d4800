"""The API's errors and the one exception handler that renders them.

Every error on `/api` is `{"error": "<message>", "code": "<machine_code>", "details": ...}`.
Domain code raises the classes below (or DRF's own); nothing builds an error `Response` by hand.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback


class ApiError(exceptions.APIException):
    """Base of our own errors: a message, a machine code and optional details."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Bad request"
    default_code = "bad_request"

    def __init__(self, message: str | None = None, *, details: Any = None, code: str | None = None):
        super().__init__(message or self.default_detail, code or self.default_code)
        self.message = str(message or self.default_detail)
        self.error_code = code or self.default_code
        self.details = details


class BadRequest(ApiError):
    pass


class Forbidden(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    default_detail = "Forbidden"
    default_code = "forbidden"


class NotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = "Not found"
    default_code = "not_found"


class Conflict(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict"
    default_code = "conflict"


class PreconditionFailed(ApiError):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The resource was modified since you read it"
    default_code = "precondition_failed"


class Unprocessable(ApiError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "Unprocessable request"
    default_code = "unprocessable"


class InvalidTransition(Unprocessable):
    default_detail = "Invalid state transition"
    default_code = "invalid_transition"


class ServiceUnavailable(ApiError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Service unavailable"
    default_code = "service_unavailable"


def _body(error: str, code: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error, "code": code}
    if details is not None:
        body["details"] = details
    return body


def _as_api_error(exc: Exception) -> tuple[int, dict[str, Any], dict[str, str]] | None:
    """Map any exception we know to (status, body, headers)."""
    if isinstance(exc, ApiError):
        return exc.status_code, _body(exc.message, exc.error_code, exc.details), {}
    if isinstance(exc, TransitionNotAllowed):
        # Transitions called outside the service's own check: report the state we were in.
        state = getattr(exc, "object", None)
        details = {"from": getattr(state, "status", None)} if state is not None else None
        return 422, _body("Invalid state transition", "invalid_transition", details), {}
    if isinstance(exc, ConcurrentTransition):
        return 409, _body("The resource was changed concurrently; retry", "concurrent_change"), {}
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
    # The request is one transaction: whatever it wrote before failing is rolled back.
    set_rollback()
    return Response(body, status=status_code, headers=headers)


def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Unknown `/api/*` routes answer JSON, not Django's HTML page."""
    return JsonResponse(_body("Not found", "not_found"), status=404)
