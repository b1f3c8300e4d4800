"""Writes for agents and their keys. Each runs in one transaction and logs one activity row."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from agents.models import Agent, AgentApiKey
from companies.models import Company, hash_token, new_secret
from companies.services import activity_record, apply_changes
from paperclip.api.actors import Actor


def _log(actor: Actor, agent: Agent, action: str, details: dict[str, Any] | None = None) -> None:
    activity_record(
        actor=actor,
        company_id=agent.company_id,
        action=action,
        entity_type="agent",
        entity_id=agent.pk,
        details=details,
    )


def validate_reports_to(agent: Agent, manager: Agent | None) -> None:
    """A manager must be another agent of the same company, and no chain may loop."""
    if manager is None:
        return
    if manager.company_id != agent.company_id:
        raise ValidationError({"reportsTo": ["Manager must belong to the same company."]})
    if manager.pk == agent.pk:
        raise ValidationError({"reportsTo": ["An agent cannot report to itself."]})
    if any(boss.pk == agent.pk for boss in manager.chain_of_command()):
        raise ValidationError({"reportsTo": ["This would make a reporting cycle."]})


@transaction.atomic
def agent_create(*, actor: Actor, company: Company, data: dict[str, Any]) -> Agent:
    agent = Agent(company=company, **data)
    validate_reports_to(agent, agent.reports_to)
    agent.save()
    _log(actor, agent, "agent.created", {"name": agent.name, "role": agent.role})
    return agent


@transaction.atomic
def agent_update(*, actor: Actor, agent: Agent, changes: dict[str, Any]) -> Agent:
    agent = Agent.objects.select_for_update().get(pk=agent.pk)
    if "reports_to" in changes:
        validate_reports_to(agent, changes["reports_to"])
    diff = apply_changes(agent, changes)
    if diff:
        agent.save()
        _log(actor, agent, "agent.updated", {"changes": diff})
    return agent


def _transition(actor: Actor, agent: Agent, name: str, action: str) -> Agent:
    agent = Agent.objects.select_for_update().get(pk=agent.pk)
    previous = agent.status
    getattr(agent, name)()
    agent.save()
    _log(actor, agent, action, {"status": {"from": previous, "to": agent.status}})
    return agent


@transaction.atomic
def agent_pause(*, actor: Actor, agent: Agent) -> Agent:
    """Pause an agent: its keys keep read access but may not change anything."""
    return _transition(actor, agent, "pause", "agent.paused")


@transaction.atomic
def agent_resume(*, actor: Actor, agent: Agent) -> Agent:
    return _transition(actor, agent, "resume", "agent.resumed")


@transaction.atomic
def agent_terminate(*, actor: Actor, agent: Agent) -> Agent:
    """Terminate an agent for good and revoke every key it has."""
    agent = _transition(actor, agent, "terminate", "agent.terminated")
    agent.api_keys.active().update(revoked_at=timezone.now())
    return agent


@transaction.atomic
def agent_key_create(
    *, actor: Actor, agent: Agent, name: str = "default"
) -> tuple[AgentApiKey, str]:
    """Create an API key; the plain token is returned once and never stored."""
    token = new_secret("pcp_")
    key = AgentApiKey.objects.create(
        agent=agent, name=name, token_hash=hash_token(token), token_prefix=token[:12]
    )
    _log(actor, agent, "agent.key_created", {"keyId": key.pk, "name": name})
    return key, token
