"""Domain errors: what models and services raise when they refuse something.

They know nothing of HTTP. Each has a stable machine `code`, a human `message` and optional
`details`; each API dialect has one renderer that maps the classes to its status codes and body
(`paperclip.api.errors` for `/api`), and the admin shows the message.
"""

from __future__ import annotations

from typing import Any

from django_fsm import ConcurrentTransition, TransitionNotAllowed


class DomainError(Exception):
    """Base of every refusal. Subclasses set the default message and code."""

    default_message = "Request refused"
    default_code = "error"

    def __init__(self, message: str | None = None, *, code: str | None = None, details: Any = None):
        self.message = str(message or self.default_message)
        self.code = code or self.default_code
        self.details = details
        super().__init__(self.message)


class ValidationFailed(DomainError):
    """The input is malformed or names something unusable; `details` names each field."""

    default_message = "Validation failed"
    default_code = "validation_error"


class NotAuthenticated(DomainError):
    """The caller must say who it is (or which run it speaks for) to do this."""

    default_message = "Unauthorized"
    default_code = "unauthorized"


class NotAllowed(DomainError):
    """The caller is known but may not do this."""

    default_message = "Forbidden"
    default_code = "forbidden"


class NotFound(DomainError):
    """No such object, or one the caller may not see (the two are indistinguishable)."""

    default_message = "Not found"
    default_code = "not_found"


class Conflict(DomainError):
    """The object's current state refuses the request (a lock, a finished run, a stale base)."""

    default_message = "Conflict"
    default_code = "conflict"


class PreconditionFailed(DomainError):
    """The caller's copy is stale (If-Match)."""

    default_message = "The resource was modified since you read it"
    default_code = "precondition_failed"


class Unprocessable(DomainError):
    """Well-formed, but a rule of the domain refuses it."""

    default_message = "Unprocessable request"
    default_code = "unprocessable"


class InvalidTransition(Unprocessable):
    """A lifecycle change the state machine does not allow; details `{from, to, allowed}`."""

    default_message = "Invalid state transition"
    default_code = "invalid_transition"


class Unavailable(DomainError):
    """A dependency (the database) is down; the caller may retry."""

    default_message = "Service unavailable"
    default_code = "service_unavailable"


class TooManyRequests(DomainError):
    """The caller must wait `retry_after` seconds before trying again (too many failed
    authentications from its address or on its key prefix: `paperclip.api.auth_failures`)."""

    default_message = "Too many requests"
    default_code = "too_many_requests"

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: int,
        code: str | None = None,
        details: Any = None,
    ):
        self.retry_after = retry_after
        super().__init__(message, code=code, details=details)


def validation_error(field: str, message: str) -> ValidationFailed:
    """The common case: one field, one message."""
    return ValidationFailed(details={field: [message]})


def from_fsm(exc: TransitionNotAllowed | ConcurrentTransition) -> DomainError:
    """django-fsm's own refusals as domain errors, with `{from, to, allowed}` when known."""
    if isinstance(exc, ConcurrentTransition):
        return Conflict("The resource was changed concurrently; retry", code="concurrent_change")
    return InvalidTransition(details=_fsm_details(exc))


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
