"""drf-spectacular extensions: describe our authentication schemes in the OpenAPI document."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


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
