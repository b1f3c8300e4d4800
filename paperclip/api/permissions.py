"""Permission classes: who may call what. Company scoping itself lives in the querysets."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from paperclip.actors import Actor


def actor_of(request) -> Actor | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, Actor) else None


class IsActor(BasePermission):
    """Any authenticated caller; a paused agent or a viewer may only read.

    Object-level: writing needs write access to the object's company.
    """

    message = "Forbidden"

    def has_permission(self, request, view) -> bool:
        actor = actor_of(request)
        if actor is None:
            return False
        if request.method in SAFE_METHODS:
            return True
        if actor.is_agent and not actor.agent.can_mutate:
            self.message = "Agent is not active"
            return False
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return True
        actor = actor_of(request)
        company_id = obj.pk if obj._meta.model_name == "company" else obj.company_id
        if not actor.can_write(company_id):
            self.message = "Your membership in this company is read-only"
            return False
        return True


class IsBoard(IsActor):
    """Board users only (humans); agents get 403."""

    message = "Board access required"

    def has_permission(self, request, view) -> bool:
        actor = actor_of(request)
        if actor is not None and actor.is_agent:
            self.message = "Board access required"
            return False
        return super().has_permission(request, view)


class IsInstanceAdmin(IsActor):
    """Superusers: the instance's administrators (create companies)."""

    message = "Instance admin access required"

    def has_permission(self, request, view) -> bool:
        actor = actor_of(request)
        return actor is not None and actor.is_instance_admin
