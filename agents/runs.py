"""Runs on the wire: the `X-Paperclip-Run-Id` header rules, run tokens and lease renewal."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
from django.conf import settings
from django.utils import timezone

from agents.models import HeartbeatRun
from paperclip.access import refuse_dead_run
from paperclip.actors import Actor
from paperclip.errors import NotAuthenticated, Unprocessable, ValidationFailed
from paperclip.ids import parse_id
from paperclip.keys import derived_key, derived_keys

RUN_TOKEN_AUDIENCE = "paperclip-run"
# How often one process may try to renew the same run's lease (the database also refuses
# renewals within a few seconds of the last one, across processes).
_RENEW_EVERY_SECONDS = 5.0
_last_renewal: dict[str, float] = {}


def mint_run_token(run: HeartbeatRun) -> str:
    """A short-lived bearer token bound to the run's agent and the run itself."""
    now = timezone.now()
    claims = {
        "sub": run.agent_id,
        "run": run.pk,
        "cmp": run.company_id,
        "aud": RUN_TOKEN_AUDIENCE,
        "iat": now,
        "exp": now + timedelta(seconds=settings.PAPERCLIP_RUN_TOKEN_SECONDS),
    }
    # Signed with a key derived for run tokens alone, never SECRET_KEY itself.
    return jwt.encode(claims, derived_key("paperclip.run-token"), algorithm="HS256")


def read_run_token(token: str) -> dict | None:
    """The claims of a valid run token, or None (expired, forged, or not a run token).

    Accepts what the run-token key derived from SECRET_KEY signed, or from one of
    SECRET_KEY_FALLBACKS while a rotated key's tokens are still live."""
    for key in derived_keys("paperclip.run-token"):
        try:
            return jwt.decode(token, key, algorithms=["HS256"], audience=RUN_TOKEN_AUDIENCE)
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidTokenError:
            return None
    return None


def check_run_header(run_id: str | None, token_run_id: str | None) -> str | None:
    """The run id a request speaks for: the header's, which must match a run token's run."""
    if run_id is None:
        return token_run_id
    parsed = parse_id(run_id, "run")
    if parsed is None:
        raise ValidationFailed(
            "Malformed run id", code="run_id_malformed", details={"runId": run_id}
        )
    run_id = parsed
    if token_run_id is not None and run_id != token_run_id:
        raise Unprocessable(
            "X-Paperclip-Run-Id does not match the run token",
            code="run_id_mismatch",
            details={"runId": run_id, "tokenRunId": token_run_id},
        )
    return run_id


def renew_lease(run_id: str, agent_id: str) -> None:
    """Every request that carries a run id keeps that run alive (throttled)."""
    now = time.monotonic()
    if now - _last_renewal.get(run_id, 0.0) < _RENEW_EVERY_SECONDS:
        return
    if len(_last_renewal) > 10_000:  # bounded: forget everything rather than grow
        _last_renewal.clear()
    _last_renewal[run_id] = now
    HeartbeatRun.objects.renew_lease(run_id, agent_id)


def own_run(run_id: str, agent) -> HeartbeatRun:
    """The run `run_id` names, which must be one of `agent`'s (else 422)."""
    run = HeartbeatRun.objects.filter(pk=run_id).first()
    if run is None or run.agent_id != agent.pk:
        raise Unprocessable(
            "Unknown run for this agent", code="run_unknown", details={"runId": run_id}
        )
    return run


def resolve_run(actor: Actor, *, required: bool) -> HeartbeatRun | None:
    """The caller's current run, checked: the agent's own, and not finished or expired.

    Board callers never need one (an unknown header from them is ignored, DESIGN §3). An agent
    without one gets 401 when the action requires it.
    """
    if not actor.is_agent:
        return None
    if actor.run_id is None:
        if required:
            raise NotAuthenticated("Agent run id required", code="run_id_required")
        return None
    run = actor.run or own_run(actor.run_id, actor.agent)
    refuse_dead_run(run)
    return run
