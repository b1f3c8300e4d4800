"""The one permission class: the caller is authenticated as a board user or an agent.

Who may do what (board-only verbs, an agent acting as itself, read-only seats, paused agents) is
decided by the services (`paperclip.access`), whoever calls them; company scoping lives in the
querysets.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from paperclip.actors import Actor


def actor_of(request) -> Actor | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, Actor) else None


class IsActor(BasePermission):
    """Any authenticated caller: a board user (token or admin session) or an agent."""

    def has_permission(self, request, view) -> bool:
        return actor_of(request) is not None
