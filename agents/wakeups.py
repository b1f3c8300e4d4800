"""Waking agents: every wake is recorded, merged into a queued run when one exists, and
delivered to HTTP agents after the transaction commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.delivery import deliver_wake
from agents.models import Agent, HeartbeatRun, WakeupRequest
from agents.process import queue_run, runs_process
from paperclip.access import refuse_spent_budget
from paperclip.actors import Actor
from paperclip.errors import Conflict

Source = HeartbeatRun.Source


def ensure_wakeable(agent: Agent) -> None:
    refuse_spent_budget(agent)
    if not agent.can_mutate:
        raise Conflict(
            f"Agent is {agent.status} and cannot be woken",
            code="agent_not_wakeable",
            details={"agentId": agent.pk, "status": agent.status},
        )


def _context(issue_id: str | None, reason: str, extra: dict[str, Any]) -> dict[str, Any]:
    context = {"wakeReason": reason, **{k: v for k, v in extra.items() if v is not None}}
    if issue_id:
        context["taskId"] = context["issueId"] = issue_id
    return context


def wake(
    *,
    actor: Actor,
    agent: Agent,
    source: str,
    reason: str,
    issue_id: str | None = None,
    context: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> tuple[HeartbeatRun, bool]:
    """Wake `agent`: answers (run, created). Call inside the caller's transaction.

    A wake for an agent that already has a queued run for the same issue (or, naming no issue,
    a queued run naming none) merges into it (DESIGN §3). A repeated idempotency key answers the
    run of the first request.
    """
    if idempotency_key:
        earlier = (
            WakeupRequest.objects.select_related("run")
            .filter(agent=agent, idempotency_key=idempotency_key)
            .first()
        )
        if earlier is not None:
            return earlier.run, False
    context = _context(issue_id, reason, context or {})
    queued = (
        HeartbeatRun.objects.select_for_update()
        .filter(agent=agent, status=HeartbeatRun.Status.QUEUED, issue_id=issue_id)
        .order_by("created_at")
        .first()
    )
    created = queued is None
    if created:
        # A process agent's run waits for the worker as long as it must (the agent busy or
        # paused): no lease until it starts. Any other agent starts its own, or it expires.
        lease = (
            None
            if runs_process(agent)
            else timezone.now() + timedelta(seconds=settings.PAPERCLIP_LEASE_SECONDS)
        )
        run = HeartbeatRun.objects.create(
            company_id=agent.company_id,
            agent=agent,
            invocation_source=source,
            wake_reason=reason,
            issue_id=issue_id,
            context=context,
            lease_expires_at=lease,
        )
    else:
        run = queued
        # The latest wake's context wins (the newest comment is the one to read first).
        run.context = {**run.context, **context}
        run.wake_reason = reason
        run.save(update_fields=["context", "wake_reason"])
    try:
        with transaction.atomic():
            WakeupRequest.objects.create(
                company_id=agent.company_id,
                agent=agent,
                run=run,
                source=source,
                reason=reason,
                payload=payload or {},
                idempotency_key=idempotency_key or None,
                requested_by_type=actor.type,
                requested_by_id=actor.id,
                coalesced=not created,
            )
    except IntegrityError:
        # A concurrent request with the same idempotency key won; answer its run.
        earlier = WakeupRequest.objects.select_related("run").get(
            agent=agent, idempotency_key=idempotency_key
        )
        return earlier.run, False
    if created and agent.adapter_type == Agent.Adapter.HTTP:
        run_id = run.pk
        transaction.on_commit(lambda: deliver_wake.enqueue(run_id, 1))
    if created and runs_process(agent):
        queue_run(run)
    return run, created


@dataclass
class Wakes:
    """Collects the agents a request wakes, so each is woken once (the first reason wins)."""

    actor: Actor
    pending: dict[str, tuple[Agent, str, str, dict[str, Any]]] = field(default_factory=dict)

    def add(self, agent: Agent | None, source: str, reason: str, **context: Any) -> None:
        if agent is None:
            return
        if agent.pk in self.pending:
            # One wake per agent: the first reason stands, later context (a comment id) joins it.
            for key, value in context.items():
                self.pending[agent.pk][3].setdefault(key, value)
            return
        if self.actor.is_agent and self.actor.agent.pk == agent.pk:
            return  # an agent's own actions never wake itself
        if not agent.can_mutate:
            return  # paused/terminated agents are not woken by events
        self.pending[agent.pk] = (agent, source, reason, context)

    def send(self, *, issue_id: str | None) -> None:
        for agent, source, reason, context in self.pending.values():
            wake(
                actor=self.actor,
                agent=agent,
                source=source,
                reason=reason,
                issue_id=issue_id,
                context=context,
            )
        self.pending.clear()
