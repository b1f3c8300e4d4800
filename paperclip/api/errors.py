"""The API's errors and the one exception handler that renders them.

Every error on `/api` is `{"error": "<message>", "code": "<machine_code>", "details": ...}`.
Domain code raises the classes below (or DRF's own); nothing builds an error `Response` by hand.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from rest_framework import exceptions, status
from rest_framework.response import Response


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


class Unauthorized(ApiError):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = "Unauthorized"
    default_code = "unauthorized"


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


def _fsm_details(exc: TransitionNotAllowed) -> dict[str, Any] | None:
    """`{from, to, allowed}` for a transition method that refused to run."""
    instance, method = getattr(exc, "object", None), getattr(exc, "method", None)
    meta = getattr(method, "_django_fsm", None)
    if instance is None or meta is None:
        return None
    field = meta.field
    targets = {t.target for t in meta.transitions.values() if isinstance(t.target, str)}
    available = getattr(instance, f"get_available_{field.name}_transitions")()
    return {
        "from": field.get_state(instance),
        "to": targets.pop() if len(targets) == 1 else None,
        "allowed": sorted({t.target for t in available if isinstance(t.target, str)}),
    }


def _as_api_error(exc: Exception) -> tuple[int, dict[str, Any], dict[str, str]] | None:
    """Map any exception we know to (status, body, headers)."""
    if isinstance(exc, ApiError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
        return exc.status_code, _body(exc.message, exc.error_code, exc.details), headers
    if isinstance(exc, TransitionNotAllowed):
        return 422, _body("Invalid state transition", "invalid_transition", _fsm_details(exc)), {}
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
    # Imported here: rest_framework.views loads the authentication classes, which raise ours.
    from rest_framework.views import set_rollback

    # The request is one transaction: whatever it wrote before failing is rolled back.
    set_rollback()
    return Response(body, status=status_code, headers=headers)


@csrf_exempt  # answer 404 JSON whatever the method, never Django's CSRF page
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Unknown `/api/*` routes answer JSON, not Django's HTML page."""
    return JsonResponse(_body("Not found", "not_found"), status=404)
