"""Agents authenticate with an API key (`Bearer pcp_<48 hex>`) or a run token (a JWT)."""

from __future__ import annotations

from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import SAFE_METHODS

from agents.models import Agent, AgentApiKey, HeartbeatRun
from agents.runs import check_run_header, own_run, read_run_token, renew_lease
from companies.models import hash_token
from paperclip.actors import Actor
from paperclip.api.authentication import BearerAuthentication, bearer_token, touch_last_used

AGENT_KEY_PREFIX = "pcp_"
RUN_ID_HEADER = "HTTP_X_PAPERCLIP_RUN_ID"


def agent_actor(agent: Agent, *, run_id: str | None = None, run=None, credential=None) -> Actor:
    companies = frozenset({agent.company_id})
    return Actor(
        type="agent",
        id=agent.pk,
        agent=agent,
        company_ids=companies,
        writable_company_ids=companies if agent.can_mutate else frozenset(),
        run_id=run_id,
        run=run,
        credential=credential,
    )


def _authenticated(request, agent: Agent, credential, token_run: HeartbeatRun | None = None):
    token_run_id = token_run.pk if token_run is not None else None
    run_id = check_run_header(request.META.get(RUN_ID_HEADER) or None, token_run_id)
    run = None
    if run_id is not None:
        renew_lease(run_id, agent.pk)
        if request.method not in SAFE_METHODS:
            # Every write records its run id: it must name a run of this agent (DESIGN §3);
            # whether that run may still write is the services' check (paperclip.access).
            run = token_run or own_run(run_id, agent)
    return agent, agent_actor(agent, run_id=run_id, run=run, credential=credential)


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
        return _authenticated(request, key.agent, key)


class RunTokenAuthentication(BearerAuthentication):
    """The token a wakeup hands out: it speaks for one agent and one run only."""

    def authenticate(self, request):
        token = bearer_token(request)
        if token is None or token.count(".") != 2:
            return None
        claims = read_run_token(token)
        if claims is None:
            raise AuthenticationFailed()
        run = HeartbeatRun.objects.select_related("agent").filter(pk=claims["run"]).first()
        # A run token speaks for its run only while the run lives: once the run is finished,
        # cancelled or timed out it no longer authenticates (the agent's API key still does).
        if run is None or run.is_terminal or run.agent_id != claims["sub"]:
            raise AuthenticationFailed()
        agent = run.agent
        if agent.status == Agent.Status.TERMINATED:
            raise AuthenticationFailed()
        return _authenticated(request, agent, run, token_run=run)
