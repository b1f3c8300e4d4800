"""drf-spectacular extensions: our authentication schemes, and every error response.

`AutoSchema` (settings' DEFAULT_SCHEMA_CLASS) declares, on every operation, the error statuses
it can answer, each with the one `Error` component: the body `paperclip.api.errors` renders for
every failure on `/api`. Which statuses an operation declares follows from what it is (a write,
one with a path id, a body, `If-Match`, throttles), so a new view is described without
decorating it.

`/v1` operations (DESIGN §8) are described in their own dialect: tagged `v1`, errors with the
`V1Error` component (`{"error": {"code", "message", "details", "requestId"}}`), and success
bodies in the `{data, meta}` envelope (`meta.nextCursor` and `meta.hasMore` on pages). Their ids
are written as stored, so `uuid_ids` leaves the components only `/v1` uses alone.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent, get_lib_doc_excludes

from paperclip.api.wire import names_ids


def _scheme(target: str, name: str, definition: dict) -> type[OpenApiAuthenticationExtension]:
    """Register `definition` as the OpenAPI security scheme of the authentication class."""
    return type(
        f"{name}Scheme",
        (OpenApiAuthenticationExtension,),
        {
            "target_class": target,
            "name": name,
            "get_security_definition": lambda self, auto_schema: definition,
        },
    )


def _bearer(description: str, **extra) -> dict:
    return {"type": "http", "scheme": "bearer", "description": description, **extra}


SCHEMES = [
    _scheme(
        "agents.authentication.AgentKeyAuthentication",
        "agentKey",
        _bearer("An agent API key: `Authorization: Bearer pcp_...`"),
    ),
    _scheme(
        "agents.authentication.RunTokenAuthentication",
        "runToken",
        _bearer("The run token a wakeup answers: one agent, one run", bearerFormat="JWT"),
    ),
    _scheme(
        "companies.authentication.BoardTokenAuthentication",
        "boardToken",
        _bearer("A board user's token from `manage.py create_board_token`: `pcb_...`"),
    ),
    _scheme(
        "companies.authentication.BoardSessionAuthentication",
        "adminSession",
        {"type": "apiKey", "in": "cookie", "name": "sessionid"},
    ),
]


def canonical_paths(endpoints, **kwargs):
    """Routes accept an optional trailing slash; the schema names the canonical, slash-less path."""
    return [
        (path.rstrip("/"), regex, method, callback) for path, regex, method, callback in endpoints
    ]


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error on `/api`.",
    "properties": {
        "error": {"type": "string", "description": "What went wrong, for a human."},
        "code": {
            "type": "string",
            "description": "A stable machine code: `validation_error`, `unauthorized`, "
            "`not_found`, `checkout_conflict`, `invalid_transition`, ...",
        },
        "details": {
            "nullable": True,
            "description": "More about the error when there is more: the bad fields of a "
            "validation error, `from`/`to`/`allowed` of a refused transition, the holder of a "
            "lock, the request id of an internal error.",
        },
    },
    "required": ["error", "code"],
}

V1_PREFIX = "/v1/"

V1_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error on `/v1`.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "description": "A stable machine code: `validation_error`, `not_found`, "
                    "`invalid_transition`, `task_frozen`, `lease_conflict`, ...",
                },
                "message": {"type": "string", "description": "What went wrong, for a human."},
                "details": {
                    "nullable": True,
                    "description": "More when there is more: the bad fields of a validation "
                    "error, `{status, action, allowedActions}` of a refused transition.",
                },
                "requestId": {
                    "type": "string",
                    "description": "The request's id, as in the `X-Request-Id` header.",
                },
            },
            "required": ["code", "message", "details", "requestId"],
        }
    },
    "required": ["error"],
}

_V1_META_PROPERTIES: dict[str, Any] = {
    "requestId": {"type": "string", "description": "As in the `X-Request-Id` header."}
}
_V1_PAGE_PROPERTIES: dict[str, Any] = {
    "nextCursor": {
        "type": "string",
        "nullable": True,
        "description": "Pass as `cursor` for the next page; null on the last.",
    },
    "hasMore": {"type": "boolean"},
}

# What a status means on /v1 where it differs from /api (paperclip.v1.errors).
V1_ERROR_DESCRIPTIONS: dict[int, str] = {
    409: "Conflicts with the task's state: `invalid_transition` (`details.status/action/"
    "allowedActions`), `task_frozen`, `task_started`, `lease_conflict`, `lease_lost`, "
    "`dependencies_pending`, `budget_exhausted`, ...",
    422: "A rule of the domain refuses it: `dependency_cycle`, an agent not on the team, ...",
}

_RETRY_AFTER = {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying"}
# What each status means on /api, and the headers it carries (paperclip.api.errors).
ERROR_RESPONSES: dict[int, tuple[str, dict[str, Any]]] = {
    400: (
        "Validation failed (`details` names each bad field), or a malformed body, query "
        "parameter or `X-Paperclip-Run-Id`",
        {},
    ),
    401: (
        "Missing or invalid credentials",
        {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}},
    ),
    403: ("Authenticated, but not allowed to do this", {}),
    404: ("Not found, or another company's", {}),
    406: ("The `Accept` header names no type this operation answers", {}),
    409: ("Conflicts with the current state, e.g. checked out by another agent", {}),
    412: ("`If-Match` names a version that is no longer current", {}),
    413: ("The request body is too large", {}),
    415: ("The request body's Content-Type is not accepted", {}),
    422: (
        "A state change the lifecycle does not allow (`details.from/to/allowed`), a broken "
        "invariant, or an `X-Paperclip-Run-Id` other than the run token's",
        {},
    ),
    429: (
        "Too many requests, or too many failed authentications from this address or on this "
        "key prefix (`too_many_auth_failures`)",
        {"Retry-After": _RETRY_AFTER},
    ),
    500: (
        "Internal server error; `details.requestId` names the log line",
        {"X-Request-Id": {"schema": {"type": "string"}, "description": "The request's id"}},
    ),
    503: ("The database is unavailable", {"Retry-After": _RETRY_AFTER}),
}

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Every POST takes `Idempotency-Key` (paperclip.idempotency, DESIGN §9).
IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Retry safely: for 24 h the same key with the same request replays the first "
    "answer (with `Idempotent-Replayed: true`); with another request it is 422 "
    "`idempotency_key_mismatch`, and 409 `idempotency_key_in_use` while the first still runs.",
}


# Conditional GET (`paperclip.conditional`): every JSON GET answers an ETag, and 304 when the
# client's If-None-Match holds it.
IF_NONE_MATCH_PARAMETER = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The `ETag` of an answer you hold: 304 with no body while it is current.",
    "schema": {"type": "string"},
}
ETAG_HEADER = {
    "description": "The answer's version: send it back in `If-None-Match`.",
    "schema": {"type": "string"},
}
NOT_MODIFIED_RESPONSE = {
    "description": "Not Modified: the answer whose ETag If-None-Match named is still current.",
    "headers": {"ETag": ETAG_HEADER},
}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema, declaring each operation's error responses and, for a GET,
    its conditional form."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        ok = operation["responses"].get("200", {})
        if self.method == "GET" and "application/json" in ok.get("content", {}):
            operation.setdefault("parameters", []).append(dict(IF_NONE_MATCH_PARAMETER))
            ok.setdefault("headers", {})["ETag"] = ETAG_HEADER
            operation["responses"]["304"] = NOT_MODIFIED_RESPONSE
        if self.method == "POST":
            parameter = {
                **IDEMPOTENCY_KEY_PARAMETER,
                "schema": dict(IDEMPOTENCY_KEY_PARAMETER["schema"]),
            }
            operation.setdefault("parameters", []).append(parameter)
        v1 = self.path.startswith(V1_PREFIX)
        if v1:
            operation["tags"] = ["v1"]
            self.envelope(operation)
        error = (self.v1_error_component() if v1 else self.error_component()).ref
        responses = operation["responses"]
        for status_code in self.error_status_codes(operation):
            description, headers = ERROR_RESPONSES[status_code]
            if v1:
                description = V1_ERROR_DESCRIPTIONS.get(status_code, description)
            response: dict[str, Any] = {
                "description": description,
                "content": {"application/json": {"schema": error}},
            }
            if headers:
                response["headers"] = headers
            # A view's own declaration of a status wins.
            responses.setdefault(str(status_code), response)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def error_component(self) -> ResolvedComponent:
        component = ResolvedComponent(
            name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA
        )
        self.registry.register_on_missing(component)
        return component

    def v1_error_component(self) -> ResolvedComponent:
        component = ResolvedComponent(
            name="V1Error", type=ResolvedComponent.SCHEMA, object="V1Error", schema=V1_ERROR_SCHEMA
        )
        self.registry.register_on_missing(component)
        return component

    def envelope(self, operation: dict[str, Any]) -> None:
        """Wrap each success body of a `/v1` operation in `{data, meta}`
        (`paperclip.v1.renderers`): `meta` has the request id, and on a page (an operation
        taking `cursor`) `nextCursor` and `hasMore`; a view may add its own (`envelope_meta`)."""
        meta = dict(_V1_META_PROPERTIES)
        if "cursor" in {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}:
            meta |= _V1_PAGE_PROPERTIES
        meta |= getattr(self.view, "envelope_meta", {})
        meta_schema = {"type": "object", "properties": meta, "required": list(meta)}
        for status_code, response in operation["responses"].items():
            if not str(status_code).startswith("2"):
                continue
            for media in response.get("content", {}).values():
                media["schema"] = {
                    "type": "object",
                    "properties": {"data": media["schema"], "meta": meta_schema},
                    "required": ["data", "meta"],
                }

    def error_status_codes(self, operation: dict[str, Any]) -> set[int]:
        """The error statuses this operation can answer."""
        # Anything can fail unexpectedly or find the database down; DRF negotiates every
        # answer's type against `Accept`.
        codes = {406, 500, 503}
        if self.view.get_permissions():
            # Authentication runs first: bad credentials, a malformed or mismatched
            # X-Paperclip-Run-Id, too many failed authentications from the address or on the
            # key prefix (429, paperclip.api.auth_failures); then the service decides who may
            # act.
            codes |= {400, 401, 403, 422, 429}
        if "{" in self.path:
            codes.add(404)
        if self.method in WRITE_METHODS:
            codes |= {400, 409, 422}
        if "requestBody" in operation:
            codes |= {400, 413, 415}
        headers = {
            parameter["name"].lower()
            for parameter in operation.get("parameters", [])
            if parameter["in"] == "header"
        }
        if "if-match" in headers:
            codes.add(412)
        if self.view.get_throttles():
            codes.add(429)
        return codes


def lib_doc_excludes() -> list[type]:
    """drf-spectacular's own list plus our serializer bases: their docstrings explain the
    bases, so they must not become every component's description."""
    from paperclip.api import serializers

    return [
        *get_lib_doc_excludes(),
        serializers.CamelCaseMixin,
        serializers.RefuseUnknownFieldsMixin,
        serializers.CachedFieldsModelSerializer,
    ]


def closed_request_bodies(result, **kwargs):
    """Request bodies refuse fields they do not have (400 `Unknown field.`): say so in the
    schema (`additionalProperties: false`), so generated clients and fuzzers know it."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component.setdefault("additionalProperties", False)
    return result


# Written by `paperclip.api.wire` as a UUID only when it is one: an activity row's actor may be
# `system`.
NOT_ALWAYS_UUID = frozenset({"actorId"})


def uuid_ids(result, **kwargs):
    """Ids in responses are UUIDs (`paperclip.api.wire`): say so (`format: uuid`) on the
    properties the renderer rewrites. Requests accept either form, so they stay plain strings.
    `/v1` writes ids as stored: a component only its operations use is left as it is."""
    components = result.get("components", {}).get("schemas", {})
    paths = result.get("paths", {})
    v1_only = _reachable(paths, components, v1=True) - _reachable(paths, components, v1=False)
    for name, component in components.items():
        if name.endswith("Request") or name in v1_only:
            continue
        for prop, schema in (component.get("properties") or {}).items():
            if not names_ids(prop) or prop in NOT_ALWAYS_UUID:
                continue
            target = schema.get("items", {}) if schema.get("type") == "array" else schema
            if target.get("type") == "string":
                target["format"] = "uuid"
    return result


def _refs(node: Any) -> set[str]:
    """The component names a piece of the schema points to."""
    if isinstance(node, dict):
        names = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
        return names.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def _reachable(paths: dict[str, Any], components: dict[str, Any], *, v1: bool) -> set[str]:
    """Every component the `/v1` operations (or the others) use, directly or through others."""
    todo = set().union(
        *(_refs(item) for path, item in paths.items() if path.startswith(V1_PREFIX) == v1)
    )
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo |= _refs(components.get(name, {}))
    return seen
