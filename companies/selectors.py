"""Reads of board users that carry a rule of their own (who may ask)."""

from __future__ import annotations

from companies.models import User
from paperclip.actors import Actor
from paperclip.errors import NotAllowed


def user_me(actor: Actor) -> User:
    """The calling board user with its memberships. Agents are not board users (403)."""
    if not actor.is_board:
        raise NotAllowed("Board access required")
    return User.objects.prefetch_related("memberships__company").get(pk=actor.user.pk)
