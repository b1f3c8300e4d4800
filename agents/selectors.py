"""Reads of agents that carry a rule of their own (who may ask)."""

from __future__ import annotations

from agents.models import Agent
from paperclip.actors import Actor
from paperclip.errors import NotAllowed


def agent_me(actor: Actor) -> Agent:
    """The calling agent. Board users are not agents: they have `/users/me` (403 here)."""
    if not actor.is_agent:
        raise NotAllowed("Only agents have a /agents/me; board users see /users/me")
    return actor.agent
