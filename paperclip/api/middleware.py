"""The `/api` edge: what is refused before any view or query runs, and what a failure answers.

Before the view, for `/api/*` and `/v1/*` only (each answering in its own dialect):
- a Host header not in ALLOWED_HOSTS → 400 `invalid_host` (JSON even with DEBUG on);
- a NUL in the URL path → 404 (such a path names no object);
- a NUL in a query parameter or a header → 400 `validation_error` naming it.
PostgreSQL refuses NUL in text, so none of them may reach a query. (Bodies are checked by the
parsers of `paperclip.api.parsers`.)

After the view: whatever it raised that DRF's handler did not render (an unexpected exception,
the database failing in the request's transaction) answers the JSON envelope, through
`paperclip.api.errors.api_error_response`. The admin keeps Django's pages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse

from paperclip.api.errors import api_error_response, is_api, request_id
from paperclip.api.parsers import NUL, NUL_MESSAGE, nul_fields
from paperclip.errors import NotFound, ValidationFailed

# Where Django itself reports a refused Host header.
host_logger = logging.getLogger("django.security.DisallowedHost")


class ApiEdgeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api(request):
            return self.get_response(request)
        response = self.refuse(request) or self.get_response(request)
        # Every API answer names its request (`/v1`'s `meta.requestId` is the same id), so a
        # client's report and the server's log join up.
        response["X-Request-Id"] = request_id(request)
        return response

    def refuse(self, request: HttpRequest) -> HttpResponse | None:
        """The answer to a request that must not go further, or None."""
        try:
            request.get_host()
        except DisallowedHost as exc:
            host_logger.error("%s", exc)
            return api_error_response(request, exc)
        if NUL in request.path:
            return api_error_response(request, NotFound())
        found = nul_fields(request.GET)
        found.update(
            {
                key[5:].replace("_", "-").title(): [NUL_MESSAGE]
                for key, value in request.META.items()
                if key.startswith("HTTP_") and isinstance(value, str) and NUL in value
            }
        )
        if found:
            return api_error_response(request, ValidationFailed(details=found))
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """What the view (or ATOMIC_REQUESTS' transaction around it) raised, as JSON."""
        if not is_api(request):
            return None
        response = api_error_response(request, exception)
        if response.status_code == 500:
            # As Django does for the errors it handles: error trackers (and the test client)
            # listen to this signal.
            got_request_exception.send(sender=None, request=request)
        return response
