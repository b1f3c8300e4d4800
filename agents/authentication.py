"""Agents authenticate with an API key (`Bearer pcp_<48 hex>`) or a run token (a JWT)."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches
from rest_framework.permissions import SAFE_METHODS

from agents.models import Agent, AgentApiKey, HeartbeatRun
from agents.runs import check_run_header, own_run, read_run_token, renew_lease
from companies.models import hash_token
from paperclip.actors import Actor
from paperclip.api.authentication import BearerAuthentication, bearer_token, touch_last_used

AGENT_KEY_PREFIX = "pcp_"
RUN_ID_HEADER = "HTTP_X_PAPERCLIP_RUN_ID"
# Where a process keeps what agent keys resolved to (settings.CACHES, in-process).
KEY_CACHE = "auth"


def active_key(token: str) -> AgentApiKey | None:
    """The active key `token` is, with its agent, as read at most
    PAPERCLIP_AUTH_CACHE_SECONDS ago by this process (a fresh copy every call: the cache keeps
    pickles, so no two requests share an instance). Unknown tokens are never cached."""
    token_hash = hash_token(token)
    seconds = settings.PAPERCLIP_AUTH_CACHE_SECONDS
    cache = caches[KEY_CACHE]
    key = cache.get(token_hash) if seconds > 0 else None
    if key is None:
        key = (
            AgentApiKey.objects.active()
            .select_related("agent")
            .filter(token_hash=token_hash)
            .first()
        )
        if key is None:
            return None
        # Its use is recorded when it is read, so at most once a cache period per process.
        touch_last_used(AgentApiKey.objects, key)
        if seconds > 0:
            cache.set(token_hash, key, seconds)
    return key


def forget_keys() -> None:
    """Drop what this process trusts about agent keys: called when an agent's status changes
    or its keys are revoked, so the process that made the change refuses at once (the others
    within PAPERCLIP_AUTH_CACHE_SECONDS)."""
    caches[KEY_CACHE].clear()


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
        self.presented(request, token)
        key = active_key(token)
        if key is None or key.agent.status == Agent.Status.TERMINATED:
            raise self.failed(request, token)
        return _authenticated(request, key.agent, key)


class RunTokenAuthentication(BearerAuthentication):
    """The token a wakeup hands out: it speaks for one agent and one run only."""

    limit_by_key_prefix = False  # every run token begins with the same JWT header

    def authenticate(self, request):
        token = bearer_token(request)
        if token is None or token.count(".") != 2:
            return None
        self.presented(request, token)
        claims = read_run_token(token)
        if claims is None:
            raise self.failed(request, token)
        run = HeartbeatRun.objects.select_related("agent").filter(pk=claims["run"]).first()
        # A run token speaks for its run only while the run lives: once the run is finished,
        # cancelled or timed out it no longer authenticates (the agent's API key still does).
        if run is None or run.is_terminal or run.agent_id != claims["sub"]:
            raise self.failed(request, token)
        agent = run.agent
        if agent.status == Agent.Status.TERMINATED:
            raise self.failed(request, token)
        return _authenticated(request, agent, run, token_run=run)
