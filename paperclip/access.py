"""Who may act: the checks every service makes before it changes anything (DESIGN §3, §4).

Services call these on the rows they are about to change, so the API dialects, the admin and the
management commands get the same refusals. Reading is scoped by the querysets
(`visible_to(actor)`): an object the caller cannot see is a 404 before any of these run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paperclip.actors import Actor
from paperclip.errors import Conflict, NotAllowed, Unprocessable, validation_error
from paperclip.ids import parse_id

if TYPE_CHECKING:
    from agents.models import Agent


def ensure_can_write(actor: Actor, company_id: str, *, check_run: bool = True) -> None:
    """The caller may change things in this company: an active agent of it, or a board member
    whose seat is not read-only. An agent writing with a run id writes from a live run of its
    own (a finished, cancelled, timed-out or expired run → 422).
    """
    if actor.is_agent and not actor.agent.can_mutate:
        refuse_spent_budget(actor.agent)
        raise NotAllowed("Agent is not active")
    if not actor.sees_company(company_id):
        raise NotAllowed()
    if not actor.can_write(company_id):
        raise NotAllowed("Your membership in this company is read-only")
    if check_run:
        ensure_live_run(actor)


def refuse_spent_budget(agent: Agent) -> None:
    """An agent its budget stopped is told so (409), whatever it tries (DESIGN §10)."""
    if agent.status == "paused" and agent.pause_reason == "budget":
        raise Conflict(
            "Budget exhausted",
            code="budget_exhausted",
            details={"agentId": agent.pk, "pauseReason": "budget"},
        )


def ensure_board(actor: Actor, company_id: str) -> None:
    """Board users with a writable seat (and the system actor of the ops commands); agents get
    403."""
    if not actor.is_board and actor.type != "system":
        raise NotAllowed("Board access required")
    ensure_can_write(actor, company_id)


def ensure_instance_admin(actor: Actor) -> None:
    if not actor.is_instance_admin:
        raise NotAllowed("Instance admin access required")


def ensure_self_or_board(actor: Actor, agent: Agent, message: str) -> None:
    """An agent acts only as itself; the board may act for any agent of its companies."""
    ensure_can_write(actor, agent.company_id)
    if actor.is_agent and actor.agent.pk != agent.pk:
        raise NotAllowed(message)


def ensure_live_run(actor: Actor) -> None:
    """A write that names a run (header or run token) must come from that run while it lives.

    The run was checked to be the caller's own when the request authenticated; here, whether it
    may still write. Board callers' run headers are ignored (DESIGN §3).
    """
    if actor.is_agent and actor.run is not None:
        refuse_dead_run(actor.run)


def refuse_dead_run(run) -> None:
    """422 `run_not_live` for a finished, cancelled, timed-out or expired run."""
    if not run.is_live:
        raise Unprocessable(
            f"Run is not live ({run.status})",
            code="run_not_live",
            details={"runId": run.pk, "status": run.status, "leaseExpiresAt": run.lease_expires_at},
        )


def refuse_other_caller(actor: Actor, claimed: str | None, *, field: str, prefix: str) -> None:
    """A body naming who acts (Paperclip's `requestedByAgentId`, `decidedByUserId`) must name
    the caller: the server records the caller, so any other id would be a lie, refused (400)."""
    if claimed is None:
        return
    if parse_id(claimed, prefix) != actor.id:
        raise validation_error(field, "Must name the caller (or be left out).")
