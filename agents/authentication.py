"""Agents authenticate with API keys: `Authorization: Bearer pcp_<48 hex>`."""

from __future__ import annotations

from rest_framework.exceptions import AuthenticationFailed

from agents.models import Agent, AgentApiKey
from companies.models import hash_token
from paperclip.api.actors import Actor
from paperclip.api.authentication import BearerAuthentication, bearer_token, touch_last_used

AGENT_KEY_PREFIX = "pcp_"
RUN_ID_HEADER = "HTTP_X_PAPERCLIP_RUN_ID"


def agent_actor(agent: Agent, *, run_id: str | None = None) -> Actor:
    companies = frozenset({agent.company_id})
    return Actor(
        type="agent",
        id=agent.pk,
        agent=agent,
        company_ids=companies,
        writable_company_ids=companies if agent.can_mutate else frozenset(),
        run_id=run_id,
    )


class AgentKeyAuthentication(BearerAuthentication):
    def authenticate(self, request):
        token = bearer_token(request)
        if token is None or not token.startswith(AGENT_KEY_PREFIX):
            return None
        key = (
            AgentApiKey.objects.active()
            .select_related("agent")
            .filter(token_hash=hash_token(token))
            .first()
        )
        if key is None or key.agent.status == Agent.Status.TERMINATED:
            raise AuthenticationFailed()
        touch_last_used(AgentApiKey.objects, key)
        run_id = request.META.get(RUN_ID_HEADER) or None
        return key.agent, agent_actor(key.agent, run_id=run_id)
