"""Reads of agents that carry a rule of their own (who may ask)."""

from __future__ import annotations

from typing import Any

from agents.models import Agent, HeartbeatRun
from paperclip.actors import Actor
from paperclip.errors import NotAllowed


def agent_me(actor: Actor) -> Agent:
    """The calling agent. Board users are not agents: they have `/users/me` (403 here)."""
    if not actor.is_agent:
        raise NotAllowed("Only agents have a /agents/me; board users see /users/me")
    return actor.agent


def whoami(actor: Actor) -> dict[str, Any]:
    """Who the credential speaks for (`GET /v1/whoami`, DESIGN §8): the agent or the board user,
    its companies, and the credential's name and creation time (a run token's are its run's)."""
    credential = actor.credential
    if isinstance(credential, HeartbeatRun):
        token_name, created_at = f"run:{credential.pk}", credential.created_at
    elif credential is not None:
        token_name, created_at = credential.name, credential.created_at
    else:  # an admin session
        token_name, created_at = None, None
    who = actor.agent if actor.is_agent else actor.user
    return {
        "type": actor.type,
        "id": actor.id,
        "name": who.name if actor.is_agent else who.username,
        "companyIds": sorted(actor.company_ids),
        "tokenName": token_name,
        "createdAt": created_at,
    }
