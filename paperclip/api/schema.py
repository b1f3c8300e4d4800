"""drf-spectacular extensions: describe our authentication schemes in the OpenAPI document."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AgentKeyScheme(OpenApiAuthenticationExtension):
    target_class = "agents.authentication.AgentKeyAuthentication"
    name = "agentKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An agent API key: `Authorization: Bearer pcp_...`",
        }


class BoardTokenScheme(OpenApiAuthenticationExtension):
    target_class = "companies.authentication.BoardTokenAuthentication"
    name = "boardToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A board user's token from `manage.py create_board_token`: `pcb_...`",
        }


class BoardSessionScheme(OpenApiAuthenticationExtension):
    target_class = "companies.authentication.BoardSessionAuthentication"
    name = "adminSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


def canonical_paths(endpoints, **kwargs):
    """Routes accept an optional trailing slash; the schema names the canonical, slash-less path."""
    return [
        (path.rstrip("/"), regex, method, callback) for path, regex, method, callback in endpoints
    ]


class RunTokenScheme(OpenApiAuthenticationExtension):
    target_class = "agents.authentication.RunTokenAuthentication"
    name = "runToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The run token a wakeup answers: speaks for one agent and one run",
        }
