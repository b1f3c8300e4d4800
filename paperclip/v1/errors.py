"""How `/v1` answers a failure (DESIGN §8): `{"error": {"code", "message", "details",
"requestId"}}`, with 003's statuses. The mapping of exceptions is `/api`'s
(`paperclip.api.errors`); only the statuses that differ and the body are `/v1`'s own."""

from __future__ import annotations

from typing import Any

from paperclip import errors
from paperclip.api.errors import STATUS_OF, Dialect

# A refused transition is a conflict with the task's state on /v1 (409), not /api's 422.
V1_STATUS_OF = {**STATUS_OF, errors.InvalidTransition: 409}


def v1_body(message: str, code: str, details: Any, request_id: str) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "details": details, "requestId": request_id}
    }


V1 = Dialect("/v1", V1_STATUS_OF, v1_body, codes={"throttled": "rate_limited"})
